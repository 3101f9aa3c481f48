"""Retriever modes over a real embedded Chroma and FTS5 index, with a fake embedder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from retrieval.chroma import CollectionNotFoundError, open_chroma_client
from retrieval.filters import SearchFilter
from retrieval.index import ChromaIndex
from retrieval.keyword import KeywordIndex
from retrieval.retriever import InvalidSearchError, Retriever
from retrieval.types import ScoredChunk
from tests.fakes import TEXTS, FakeEmbedder, make_chunks, store


@pytest.fixture
def index(tmp_path: Path) -> ChromaIndex:
    return ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake",
                       keyword=KeywordIndex(path=tmp_path / "kw.sqlite"))  # fmt: skip


def cosine(a: str, b: str) -> float:
    e = FakeEmbedder()
    return sum(x * y for x, y in zip(e.embed_query(a), e.embed_query(b), strict=True))


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_every_mode_finds_the_answer_and_scores_by_cosine(index: ChromaIndex, mode: str) -> None:
    store(index, "docs", make_chunks(TEXTS))
    retriever = Retriever(index=index, embedder=FakeEmbedder(), top_k=3, mode=mode)
    question = "Which server runs WSGI applications?"
    hits = retriever.search(question, collection="docs")
    assert "Gunicorn" in hits[0].chunk.text
    assert len(hits) == 3 if mode != "keyword" else len(hits) >= 1
    for hit in hits:
        assert hit.score == pytest.approx(cosine(question, hit.chunk.text), abs=1e-4)
    expected = {"dense": {"dense"}, "keyword": {"keyword", "dense"},
                "hybrid": {"fused", "dense"}}[mode]  # fmt: skip
    assert expected <= set(hits[0].details)


@pytest.mark.parametrize(("fusion", "key"), [("score", "fused"), ("rrf", "rrf")])
def test_hybrid_fuses_both_rankings(index: ChromaIndex, fusion: str, key: str) -> None:
    texts = ["zebra crossing rules", "pedestrian safety at crossings", "zebra stripes biology"]
    store(index, "docs", make_chunks(texts))
    retriever = Retriever(index=index, embedder=FakeEmbedder(), top_k=3, mode="hybrid",
                          fusion=fusion)  # fmt: skip
    hits = retriever.search("zebra crossing", collection="docs")
    assert hits[0].chunk.text == "zebra crossing rules"  # first in both rankings
    fused = [h.details[key] for h in hits]
    assert fused == sorted(fused, reverse=True)


@pytest.mark.parametrize("weight", [0.5, 1.0, 3.0])
def test_score_fusion_weighs_cosine_and_relative_bm25(index: ChromaIndex, weight: float) -> None:
    store(index, "docs", make_chunks(TEXTS))
    retriever = Retriever(index=index, embedder=FakeEmbedder(), top_k=8, mode="hybrid",
                          keyword_weight=weight)  # fmt: skip
    hits = retriever.search("apt packages kernel memory vectors", collection="docs")
    best = max(h.details.get("keyword", 0.0) for h in hits)
    assert best > 0
    for hit in hits:
        relative = hit.details.get("keyword", 0.0) / best
        expected = (hit.score + weight * relative) / (1 + weight)
        assert hit.details["fused"] == pytest.approx(expected, abs=1e-9)
    assert [h.details["fused"] for h in hits] == sorted((h.details["fused"] for h in hits),
                                                        reverse=True)  # fmt: skip


def test_unknown_fusion_is_refused(index: ChromaIndex) -> None:
    with pytest.raises(InvalidSearchError, match="fusion"):
        Retriever(index=index, embedder=FakeEmbedder(), fusion="average")


def test_filters_apply_inside_the_search(index: ChromaIndex) -> None:
    a = make_chunks([f"apt packages install step {i}" for i in range(30)], "/a.txt")
    b = make_chunks(["kernel memory note one", "kernel apt note two"], "/b.txt")
    store(index, "docs", a + b)
    for mode in ("dense", "keyword", "hybrid"):
        retriever = Retriever(index=index, embedder=FakeEmbedder(), top_k=2, mode=mode,
                              candidates=5)  # fmt: skip
        hits = retriever.search("apt packages install", collection="docs",
                                where=SearchFilter(sources=("/b.txt",)))  # fmt: skip
        # /a.txt has 30 better matches; a post-filter on 5 candidates would return nothing.
        assert [h.chunk.source for h in hits] == ["/b.txt"] * (2 if mode != "keyword" else 1)


def test_keyword_mode_sees_only_current_versions(index: ChromaIndex) -> None:
    store(index, "docs", make_chunks(["old wording about zebras"], "/z.txt", version="v1"))
    unpublished = make_chunks(["new wording about zebras"], "/z.txt", version="v2")
    index.upsert("docs", unpublished, FakeEmbedder().embed_documents(["new wording about zebras"]))
    retriever = Retriever(index=index, embedder=FakeEmbedder(), mode="keyword")
    assert [h.chunk.text for h in retriever.search("zebras", collection="docs")] == [
        "old wording about zebras"]  # fmt: skip


def test_mmr_diversifies(index: ChromaIndex) -> None:
    texts = ["apt install guide", "apt install guide copy", "apt install guide again",
             "kernel install notes"]  # fmt: skip
    store(index, "docs", make_chunks(texts))
    plain = Retriever(index=index, embedder=FakeEmbedder(), top_k=2, mode="dense")
    diverse = Retriever(index=index, embedder=FakeEmbedder(), top_k=2, mode="dense",
                        mmr_lambda=0.3)  # fmt: skip
    assert "kernel" not in " ".join(
        h.chunk.text for h in plain.search("apt install", collection="docs")
    )
    assert "kernel install notes" in [h.chunk.text for h in
                                      diverse.search("apt install", collection="docs")]  # fmt: skip


def test_reranker_orders_the_candidates(index: ChromaIndex) -> None:
    class PreferKernel:
        def rerank(self, question: str, texts: Sequence[str]) -> list[float]:
            return [1.0 if "kernel" in t else 0.0 for t in texts]

    store(index, "docs", make_chunks(TEXTS))
    retriever = Retriever(index=index, embedder=FakeEmbedder(), top_k=2, reranker=PreferKernel())
    hits = retriever.search("Which server runs WSGI applications?", collection="docs")
    assert "kernel" in hits[0].chunk.text
    assert hits[0].details["rerank"] == 1.0


def test_bad_searches(index: ChromaIndex) -> None:
    store(index, "docs", make_chunks(TEXTS))
    retriever = Retriever(index=index, embedder=FakeEmbedder())
    with pytest.raises(InvalidSearchError, match="Unknown search mode"):
        retriever.search("q", collection="docs", mode="psychic")
    with pytest.raises(InvalidSearchError):
        retriever.search("q", collection="docs", k=0)
    with pytest.raises(InvalidSearchError):
        Retriever(index=index, embedder=FakeEmbedder(), mode="psychic")


def test_missing_collection_fails_before_embedding(index: ChromaIndex) -> None:
    class Refusing(FakeEmbedder):
        def embed_query(self, text: str) -> list[float]:
            raise AssertionError("the embedder must not be used for a missing collection")

    with pytest.raises(CollectionNotFoundError):
        Retriever(index=index, embedder=Refusing()).search("q", collection="nothing")


@pytest.mark.parametrize("fusion", ["score", "rrf"])
def test_keyword_weight_moves_hybrid_between_the_rankers(index: ChromaIndex, fusion: str) -> None:
    store(index, "docs", make_chunks(TEXTS))
    question = "apt kernel vector server"

    def search(**kwargs: object) -> list[ScoredChunk]:
        retriever = Retriever(index=index, embedder=FakeEmbedder(), top_k=8, **kwargs)  # type: ignore[arg-type]
        return retriever.search(question, collection="docs")

    def order(**kwargs: object) -> list[str]:
        return [h.chunk.id for h in search(**kwargs)]

    dense = order(mode="dense")
    assert order(mode="hybrid", fusion=fusion, keyword_weight=0.0)[: len(dense)] == dense
    keyword = search(mode="keyword")
    heavy = search(mode="hybrid", fusion=fusion, keyword_weight=1000.0)[: len(keyword)]
    # The keyword ranking comes first (chunks with equal BM25 may swap places).
    assert {h.chunk.id for h in heavy} == {h.chunk.id for h in keyword}
    bm25 = [h.details["keyword"] for h in heavy]
    assert bm25 == sorted(bm25, reverse=True)
