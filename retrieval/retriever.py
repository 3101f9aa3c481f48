"""Answer a question with the most relevant chunks of a collection."""

from __future__ import annotations

from retrieval.embedder import Embedder
from retrieval.index import ChromaIndex, CollectionNotFoundError
from retrieval.types import ScoredChunk


class Retriever:
    """Dense retrieval: embed the question, return the nearest chunks."""

    def __init__(self, *, index: ChromaIndex, embedder: Embedder, top_k: int = 4) -> None:
        self._index = index
        self._embedder = embedder
        self._top_k = top_k

    def search(self, question: str, *, collection: str, k: int | None = None) -> list[ScoredChunk]:
        """The best `k` (default: the configured top_k) chunks for `question`, best first."""
        # Check the collection before embedding, so a missing one fails fast without a model load.
        if self._index.count(collection) == 0:
            raise CollectionNotFoundError(collection, empty=True)
        vector = self._embedder.embed_query(question)
        return self._index.query(collection, vector, k or self._top_k)
