"""Retriever over a real embedded Chroma with a fake embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.index import ChromaIndex, CollectionNotFoundError, open_chroma_client
from retrieval.retriever import Retriever
from tests.fakes import FakeEmbedder
from tests.retrieval.test_index import TEXTS, make_chunks, store


def test_search_returns_top_k_best_first(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    index = ChromaIndex(client=open_chroma_client(path=tmp_path), embedder_name="fake")
    store(index, "docs", make_chunks(TEXTS))
    retriever = Retriever(index=index, embedder=embedder, top_k=3)
    hits = retriever.search("Which server runs WSGI applications?", collection="docs")
    assert len(hits) == 3
    assert "Gunicorn" in hits[0].chunk.text
    assert len(retriever.search("kernel", collection="docs", k=5)) == 5


def test_missing_collection_fails_before_embedding(tmp_path: Path) -> None:
    class Refusing(FakeEmbedder):
        def embed_query(self, text: str) -> list[float]:
            raise AssertionError("the embedder must not be used for a missing collection")

    index = ChromaIndex(client=open_chroma_client(path=tmp_path), embedder_name="fake")
    with pytest.raises(CollectionNotFoundError):
        Retriever(index=index, embedder=Refusing()).search("q", collection="nothing")
