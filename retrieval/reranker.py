"""Optional second-stage ranking with a cross-encoder (any sentence-transformers CrossEncoder)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

from retrieval.compute import run_on

logger = logging.getLogger(__name__)


class Reranker(Protocol):
    """Scores (question, passage) pairs; higher is more relevant."""

    def rerank(self, question: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder, loaded on first use."""

    def __init__(
        self, *, model: str, device: str = "cpu", batch_size: int = 32,
        executor: Executor | None = None,
    ) -> None:  # fmt: skip
        self._executor = executor
        self._model_id = model
        self._device = device
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model now."""
        self._load()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                logger.info("loading reranker %s", self._model_id)
                self._model = run_on(
                    self._executor, lambda: CrossEncoder(self._model_id, device=self._device)
                )
            return self._model

    def rerank(self, question: str, texts: Sequence[str]) -> list[float]:
        """Cross-encoder scores for each (question, text) pair."""
        if not texts:
            return []
        model = self._load()
        scores = run_on(self._executor, lambda: model.predict(
            [(question, t) for t in texts], batch_size=self._batch_size, show_progress_bar=False
        ))  # fmt: skip
        return [float(x) for x in scores]
