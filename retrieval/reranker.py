"""Optional second-stage ranking with a cross-encoder (any sentence-transformers CrossEncoder)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from retrieval.model_thread import ModelThread, default_model_thread

logger = logging.getLogger(__name__)


class Reranker(Protocol):
    """Scores (question, passage) pairs; higher is more relevant."""

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        ...

    def rerank(self, question: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder, loaded on first use."""

    def __init__(
        self, *, model: str, device: str = "cpu", batch_size: int = 32,
        model_thread: ModelThread | None = None,
    ) -> None:  # fmt: skip
        self._model_thread = model_thread or default_model_thread()
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
                self._model = self._model_thread.run(
                    lambda: CrossEncoder(self._model_id, device=self._device), bounded=False
                )
            return self._model

    def rerank(self, question: str, texts: Sequence[str]) -> list[float]:
        """Cross-encoder scores for each (question, text) pair."""
        if not texts:
            return []
        model = self._load()
        scores = self._model_thread.run(lambda: model.predict(
            [(question, t) for t in texts], batch_size=self._batch_size, show_progress_bar=False
        ))  # fmt: skip
        return [float(x) for x in scores]
