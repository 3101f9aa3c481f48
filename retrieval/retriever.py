"""Answer a question with the most relevant chunks of a collection: dense, keyword or hybrid."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from retrieval.chroma import CollectionNotFoundError
from retrieval.embedder import Embedder
from retrieval.filters import SearchFilter
from retrieval.index import ChromaIndex
from retrieval.reranker import Reranker
from retrieval.types import Chunk, Fusion, ScoredChunk, SearchMode

MODES = tuple(SearchMode)
FUSIONS = tuple(Fusion)


class InvalidSearchError(ValueError):
    """A search that cannot run as asked (unknown mode, bad k)."""


@dataclass
class _Candidate:
    chunk: Chunk
    order: float  # higher ranks first
    details: dict[str, float]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


class Retriever:
    """Dense, keyword (BM25) or hybrid search, then optional cross-encoder reranking and MMR
    diversification. Scores are cosine similarities.

    Hybrid fuses the two candidate lists by score (default): cosine plus `keyword_weight`
    times BM25 divided by the best BM25 of the question, over 1 + `keyword_weight`; or by
    weighted reciprocal rank (`fusion="rrf"`). Score fusion keeps how much better the best
    keyword match is, which rank fusion throws away (bench retrieval: +0.06 hit@5 on covid_qa).
    """

    def __init__(
        self,
        *,
        index: ChromaIndex,
        embedder: Embedder,
        top_k: int = 4,
        mode: str = SearchMode.HYBRID,
        candidates: int = 20,
        rrf_k: int = 60,
        keyword_weight: float = 1.0,
        fusion: str = Fusion.SCORE,
        mmr_lambda: float | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        if mode not in MODES:
            raise InvalidSearchError(f"Unknown search mode {mode!r}; choose {', '.join(MODES)}")
        if fusion not in FUSIONS:
            raise InvalidSearchError(f"Unknown fusion {fusion!r}; choose {', '.join(FUSIONS)}")
        self._fusion = fusion
        self._keyword_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ragqa-bm25")
        self._index = index
        self._embedder = embedder
        self._top_k = top_k
        self._mode = mode
        self._candidates = candidates
        self._rrf_k = rrf_k
        self._keyword_weight = keyword_weight
        self._mmr_lambda = mmr_lambda
        self._reranker = reranker

    def search(
        self,
        question: str,
        *,
        collection: str,
        k: int | None = None,
        mode: str | None = None,
        where: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        """The best `k` chunks for `question`, best first."""
        mode = mode or self._mode
        k = self._top_k if k is None else k
        if mode not in MODES:
            raise InvalidSearchError(f"Unknown search mode {mode!r}; choose {', '.join(MODES)}")
        if not 1 <= k <= 1000:
            raise InvalidSearchError(f"k must be between 1 and 1000, not {k}")
        # Check the collection before embedding, so a missing one fails fast without a model load.
        if self._index.count(collection) == 0:
            raise CollectionNotFoundError(collection, empty=True)
        pool = max(self._candidates, k)
        # BM25 runs in another thread while the question is embedded and the vectors searched.
        searching = None if mode == "dense" else self._keyword_pool.submit(
            self._index.keyword_query, collection, question, pool, where=where
        )  # fmt: skip
        query = self._embedder.embed_query(question)
        dense = [] if mode == "keyword" else self._index.query(collection, query, pool, where=where)
        keyword = [] if searching is None else searching.result()
        candidates = self._fuse(mode, dense, keyword)
        missing = [c.chunk.id for c in candidates if "dense" not in c.details]
        vectors = self._index.vectors(collection, missing)
        for c in candidates:
            if "dense" not in c.details and c.chunk.id in vectors:
                c.details["dense"] = _dot(query, vectors[c.chunk.id])
        if mode == "hybrid" and self._fusion == "score":
            candidates = self._fuse_scores(candidates)
        if self._reranker is not None and candidates:
            scores = self._reranker.rerank(question, [c.chunk.text for c in candidates])
            for c, score in zip(candidates, scores, strict=True):
                c.details["rerank"], c.order = score, score
            candidates.sort(key=lambda c: -c.order)
        chosen = self._diversify(collection, query, candidates, k) if self._mmr_lambda else (
            candidates[:k]
        )  # fmt: skip
        return [
            ScoredChunk(chunk=c.chunk, score=c.details.get("dense", 0.0), details=c.details)
            for c in chosen
        ]

    def _fuse(
        self, mode: str, dense: list[ScoredChunk], keyword: list[tuple[Chunk, float]]
    ) -> list[_Candidate]:
        """Candidates in order: by one ranker, or by reciprocal rank fusion of both."""
        found: dict[str, _Candidate] = {}
        for rank, hit in enumerate(dense):
            found[hit.chunk.id] = _Candidate(hit.chunk, 0.0, {"dense": hit.score})
            found[hit.chunk.id].order = 1.0 / (self._rrf_k + rank + 1) if mode == "hybrid" else (
                hit.score
            )  # fmt: skip
        for rank, (chunk, bm25) in enumerate(keyword):
            entry = found.setdefault(chunk.id, _Candidate(chunk, 0.0, {}))
            entry.details["keyword"] = bm25
            rrf = self._keyword_weight / (self._rrf_k + rank + 1)
            entry.order += rrf if mode == "hybrid" else bm25
        for entry in found.values():
            if mode == "hybrid":
                entry.details["rrf"] = entry.order
        return sorted(found.values(), key=lambda c: -c.order)

    def _fuse_scores(self, candidates: list[_Candidate]) -> list[_Candidate]:
        """Order by cosine and BM25 relative to the question's best BM25, weighted."""
        best = max((c.details.get("keyword", 0.0) for c in candidates), default=0.0)
        w = self._keyword_weight
        for c in candidates:
            relative = c.details.get("keyword", 0.0) / best if best > 0 else 0.0
            c.order = (c.details.get("dense", 0.0) + w * relative) / (1 + w)
            c.details["fused"] = c.order
            c.details.pop("rrf", None)
        return sorted(candidates, key=lambda c: -c.order)

    def _diversify(
        self, collection: str, query: Sequence[float], candidates: list[_Candidate], k: int
    ) -> list[_Candidate]:
        """Maximal marginal relevance: relevant, but unlike what was already chosen."""
        lam = self._mmr_lambda or 1.0
        vectors = self._index.vectors(collection, [c.chunk.id for c in candidates])
        pool = [c for c in candidates if c.chunk.id in vectors]
        chosen: list[_Candidate] = []
        while pool and len(chosen) < k:

            def value(c: _Candidate) -> float:
                similarity = max(
                    (_dot(vectors[c.chunk.id], vectors[s.chunk.id]) for s in chosen), default=0.0
                )
                return lam * _dot(query, vectors[c.chunk.id]) - (1 - lam) * similarity

            best = max(pool, key=value)
            chosen.append(best)
            pool.remove(best)
        return chosen
