"""Turn text into vectors: the Embedder seam and its sentence-transformers implementation."""

from __future__ import annotations

import copy
import logging
import tempfile
import threading
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from retrieval.model_thread import ModelThread, default_model_thread

logger = logging.getLogger(__name__)


class EmbedderLoadError(Exception):
    """The embedding model could not be loaded."""


class Embedder(Protocol):
    """Anything that embeds documents and queries into the same normalised vector space."""

    @property
    def model_name(self) -> str:
        """The name recorded beside every collection built with this embedder."""
        ...

    def warm_up(self) -> None:
        """Load the model now rather than on the first call."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one unit-length vector per text."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Return the unit-length vector of a search query."""
        ...

    @property
    def max_seq_length(self) -> int:
        """The longest input, in tokens, embedded without truncation."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` takes (without special tokens)."""
        ...


_models: dict[tuple[str, str, str], Any] = {}
_models_lock = threading.Lock()
BACKENDS = ("torch", "openvino", "openvino-bf16", "onnx", "onnx-int8")


def _load_sentence_transformer(
    model: str, device: str, backend: str = "torch", cache_dir: Path | None = None
) -> Any:
    """Load a SentenceTransformer once per (model, device, backend) in this process; with an
    onnx or openvino backend, its transformer exported once to ONNX into `cache_dir` and run
    by ONNX Runtime or OpenVINO."""
    key = (model, device, backend)
    with _models_lock:
        if key not in _models:
            from sentence_transformers import SentenceTransformer

            logger.info("loading embedder %s on %s (%s)", model, device, backend)
            try:
                loaded = SentenceTransformer(model, device=device)
            except (OSError, ValueError) as error:
                raise EmbedderLoadError(
                    f"Could not load the embedding model {model!r}: {error}. Set "
                    "RAGQA_EMBEDDER__MODEL to a sentence-transformers model id or local directory."
                ) from error
            if backend != "torch":
                from retrieval.onnx_embedder import exported, run_with_onnx

                folder = cache_dir or Path(tempfile.gettempdir()) / "ragqa-models"
                onnx_file = exported(model, folder, int8=backend == "onnx-int8")
                engine = "openvino" if backend.startswith("openvino") else "onnxruntime"
                precision = "bf16" if backend.endswith("bf16") else "f32"
                loaded = run_with_onnx(loaded, onnx_file, engine, precision)
            _models[key] = loaded
        return _models[key]


class SentenceTransformerEmbedder:
    """Embeds with any sentence-transformers model id or local directory; loads on first use."""

    def __init__(
        self,
        *,
        model: str,
        model_name: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        model_thread: ModelThread | None = None,
        backend: str = "torch",
        cache_dir: Path | None = None,
    ) -> None:
        """`backend`: torch (sentence-transformers as is); openvino, openvino-bf16, onnx or
        onnx-int8 (its transformer exported once to ONNX into `cache_dir`, run by OpenVINO or
        ONNX Runtime)."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self._backend = backend
        self._cache_dir = cache_dir
        self._model_thread = model_thread or default_model_thread()
        self._model_path = model
        self._model_name = model_name or model
        self._device = device
        self._batch_size = batch_size
        self._counter: Any = None
        self._counter_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        """The configured model name (what collections record)."""
        return self._model_name

    @property
    def backend(self) -> str:
        """What runs the model (what collections record beside the model name)."""
        return self._backend

    def _load(self) -> Any:
        return self._model_thread.run(
            lambda: _load_sentence_transformer(
                self._model_path, self._device, self._backend, self._cache_dir
            ),
            bounded=False,
        )

    def warm_up(self) -> None:
        """Load the model now rather than on the first call."""
        self._load()

    @property
    def max_seq_length(self) -> int:
        """The longest input, in tokens, that the model reads without truncating."""
        return int(self._load().max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the model's tokenizer (a private copy, safe across threads)."""
        with self._counter_lock:
            if self._counter is None:
                model = self._load()
                # A copy without truncation: the model's own tokenizer truncates to the
                # window and is mutated by every encode() call.
                counter = copy.deepcopy(model.tokenizer).backend_tokenizer
                counter.no_truncation()
                counter.no_padding()
                self._counter = counter
            return len(self._counter.encode(text, add_special_tokens=False).ids)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts in batches; vectors are L2-normalised so dot product = cosine.

        Batch work (ingest, repair): it waits its turn on the model thread however busy.
        """
        return self._embed(texts, bounded=False)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (a request: busy beyond the model thread's waiting limit)."""
        return self._embed([text], bounded=True)[0]

    def _embed(self, texts: Sequence[str], *, bounded: bool) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()

        def encode(part: list[str]) -> list[list[float]]:
            vectors = model.encode(
                part,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            result: list[list[float]] = vectors.tolist()
            return result

        # A few batches per turn on the model thread, so questions are not stuck behind a
        # large ingest.
        step = self._batch_size * 4
        vectors: list[list[float]] = []
        for i in range(0, len(texts), step):
            part = list(texts[i : i + step])
            vectors += self._model_thread.run(partial(encode, part), bounded=bounded)
        return vectors
