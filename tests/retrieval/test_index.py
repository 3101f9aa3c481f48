"""ChromaIndex on a real embedded Chroma store."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.index import (
    ChromaIndex,
    CollectionNotFoundError,
    EmbedderMismatchError,
    InvalidCollectionNameError,
    open_chroma_client,
    validate_collection_name,
)
from retrieval.types import Chunk
from tests.fakes import FakeEmbedder

TEXTS = [
    "Debian is a free operating system built by volunteers.",
    "The kernel schedules processes and manages memory.",
    "Packages are installed with apt and dpkg.",
    "Chroma stores vectors for similarity search.",
    "Flask serves the HTTP API of the application.",
    "A chunk is a piece of a page of a document.",
    "Gunicorn runs WSGI applications in production.",
    "Embeddings map text to points in a vector space.",
]


def make_chunks(texts: list[str], source: str = "/docs/a.txt") -> list[Chunk]:
    return [
        Chunk(
            id=Chunk.make_id(source, None, i, t),
            text=t,
            source=source,
            start=i,
            metadata={"filename": "a.txt"},
        )
        for i, t in enumerate(texts)
    ]


@pytest.fixture
def index(tmp_path: Path) -> ChromaIndex:
    return ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")


def test_upsert_then_query_returns_chunks_with_metadata(index: ChromaIndex) -> None:
    embedder = FakeEmbedder()
    chunks = make_chunks(TEXTS)
    index.upsert("docs", chunks, embedder.embed_documents(TEXTS))
    assert index.count("docs") == len(TEXTS)
    hits = index.query("docs", embedder.embed_query("how are packages installed with apt"), 3)
    assert hits[0].chunk == chunks[2]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_top_k_equals_brute_force_search(index: ChromaIndex) -> None:
    embedder = FakeEmbedder()
    vectors = embedder.embed_documents(TEXTS)
    chunks = make_chunks(TEXTS)
    index.upsert("docs", chunks, vectors)
    for query in ["vector search", "operating system volunteers", "production web server"]:
        q = embedder.embed_query(query)
        cosine = {
            c.id: sum(a * b for a, b in zip(q, v, strict=True))
            for c, v in zip(chunks, vectors, strict=True)
        }
        exact = sorted(cosine.values(), reverse=True)[:4]
        hits = index.query("docs", q, 4)
        # Same scores as exhaustive search (ties may come in any order), each one truthful.
        assert [h.score for h in hits] == pytest.approx(exact, abs=1e-4)
        for hit in hits:
            assert hit.score == pytest.approx(cosine[hit.chunk.id], abs=1e-4)


def test_upsert_is_idempotent_and_batched(
    index: ChromaIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = FakeEmbedder()
    chunks = make_chunks(TEXTS)
    monkeypatch.setattr(index._client, "get_max_batch_size", lambda: 3)
    index.upsert("docs", chunks, embedder.embed_documents(TEXTS))
    index.upsert("docs", chunks, embedder.embed_documents(TEXTS))
    assert index.count("docs") == len(TEXTS)
    assert index.existing_ids("docs", [c.id for c in chunks] + ["nope"]) == {c.id for c in chunks}


def test_delete_and_ids_for_source(index: ChromaIndex) -> None:
    embedder = FakeEmbedder()
    a, b = make_chunks(TEXTS[:4], "/a.txt"), make_chunks(TEXTS[4:], "/b.txt")
    index.upsert("docs", a + b, embedder.embed_documents(TEXTS))
    assert index.ids_for_source("docs", "/a.txt") == {c.id for c in a}
    index.delete_ids("docs", index.ids_for_source("docs", "/a.txt"))
    assert index.count("docs") == 4
    hits = index.query("docs", embedder.embed_query(TEXTS[0]), 8)
    assert {h.chunk.source for h in hits} == {"/b.txt"}


def test_missing_and_empty_collections_are_clear_errors(index: ChromaIndex) -> None:
    with pytest.raises(CollectionNotFoundError, match="ragqa ingest PATH --collection nothing"):
        index.query("nothing", [1.0] * 64, 3)
    index.upsert("docs", make_chunks(TEXTS[:1]), FakeEmbedder().embed_documents(TEXTS[:1]))
    index.delete_ids("docs", index.ids_for_source("docs", "/docs/a.txt"))
    with pytest.raises(CollectionNotFoundError, match="is empty") as raised:
        index.query("docs", [1.0] * 64, 3)
    assert raised.value.empty


def test_embedder_mismatch_is_refused(tmp_path: Path) -> None:
    client = open_chroma_client(path=tmp_path / "chroma")
    ChromaIndex(client=client, embedder_name="model-a").upsert(
        "docs", make_chunks(TEXTS[:1]), FakeEmbedder().embed_documents(TEXTS[:1])
    )
    with pytest.raises(EmbedderMismatchError, match="model-a"):
        ChromaIndex(client=client, embedder_name="model-b").count("docs")


def test_store_persists_across_clients(tmp_path: Path) -> None:
    ChromaIndex(client=open_chroma_client(path=tmp_path / "c"), embedder_name="e").upsert(
        "docs", make_chunks(TEXTS), FakeEmbedder().embed_documents(TEXTS)
    )
    reopened = ChromaIndex(client=open_chroma_client(path=tmp_path / "c"), embedder_name="e")
    assert reopened.list_collections() == ["docs"]
    assert reopened.count("docs") == len(TEXTS)


@pytest.mark.parametrize("name", ["ab", "-docs", "docs-", "a b c", "dö-cs", "a..b", ""])
def test_invalid_collection_names_explain_the_rule(name: str) -> None:
    with pytest.raises(InvalidCollectionNameError, match="3-512 letters"):
        validate_collection_name(name)


def test_page_and_metadata_round_trip(index: ChromaIndex) -> None:
    chunk = Chunk(
        id="x" * 32,
        text="page text",
        source="/a.pdf",
        page=7,
        start=12,
        metadata={"filename": "a.pdf"},
    )
    index.upsert("docs", [chunk], [FakeEmbedder().embed_query("page text")])
    [hit] = index.query("docs", FakeEmbedder().embed_query("page text"), 1)
    assert hit.chunk == chunk
