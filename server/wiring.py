"""The one place where real models and clients are built from settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from finetune.adapters import AdapterStore
from finetune.feedback import FeedbackStore
from generation.extractive import SentenceExtractor
from generation.generator import AdapterUnavailableError, Generator
from generation.prompts import TemplateLibrary
from generation.rag import Rag
from ingest.ocr import unavailable as ocr_unavailable
from ingest.pipeline import Ingestor
from retrieval.database import Database, PostgresDatabase
from retrieval.embedder import Embedder, SentenceTransformerEmbedder
from retrieval.index import ChromaIndex
from retrieval.model_thread import ModelThread
from retrieval.reranker import CrossEncoderReranker, Reranker
from retrieval.retriever import Retriever
from server.generators import build_generator
from server.keys import KeyStore
from server.packaged import resolve_embedder
from server.settings import Settings
from server.stores import (
    close_store_client,
    keyword_index,
    open_shared_database,
    open_store_client,
    release_home_store,
    table_place,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Services:
    """Lazily built collaborators; nothing heavy happens until first use. Thread-safe."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        reranker: Reranker | None = None,
        chroma_client: Any = None,
    ) -> None:
        self.settings = settings
        self._built: dict[str, Any] = {}
        self._lock = threading.RLock()
        # Set when warm_up has loaded every model and opened the store (GET /readyz).
        self.ready = threading.Event()
        self.warm_up_error: str | None = None
        if embedder is not None:
            self._built["embedder"] = embedder
        if generator is not None:
            self._built["generator"] = generator
        if reranker is not None:
            self._built["reranker"] = reranker
        if chroma_client is not None:
            self._built["chroma_client"] = chroma_client

    def _get(self, name: str, build: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            value: T = self._built[name]
            return value

    @property
    def model_thread(self) -> ModelThread:
        """The one thread that runs all model work, with the bounded wait in front of it (see
        retrieval.model_thread for why)."""
        return self._get("model_thread", lambda: self._new_model_thread("ragqa-model"))

    def _new_model_thread(self, name: str) -> ModelThread:
        s = self.settings.generator
        return ModelThread(max_waiting=s.max_waiting, wait_timeout_s=s.wait_timeout_s, name=name)

    @property
    def embedder(self) -> Embedder:
        """The embedder (loads its model on first embed)."""
        s = self.settings.embedder
        return self._get(
            "embedder",
            lambda: SentenceTransformerEmbedder(
                model=resolve_embedder(s.model),
                model_name=s.model,
                device=s.device,
                batch_size=s.batch_size,
                model_thread=self.model_thread,
                backend=s.backend,
                cache_dir=self.settings.model_cache_dir,
            ),
        )

    @property
    def generator(self) -> Generator:
        """The generator (loads its model on first use)."""
        return self._get("generator", self._build_generator)

    def _build_generator(self) -> Generator:
        return build_generator(
            self.settings, model_thread=lambda: self.model_thread,
            remote_thread=lambda: self._new_model_thread("ragqa-remote"),
            adapters=self._adapter_path,
        )  # fmt: skip

    def _chroma_client(self) -> Any:
        return self._get("chroma_client", lambda: open_store_client(self.settings))

    def close(self) -> None:
        """Let go of the home's store, so another process may own it (see
        retrieval.home_store); the models stay loaded."""
        with self._lock:
            client = self._built.pop("chroma_client", None)
            database = self._built.get("database")
            for name in ("index", "retriever", "ingestor", "rag"):
                self._built.pop(name, None)
        if database is not None:
            database.close()  # its threads reconnect at their next use
        if client is not None:
            close_store_client(client, self.settings)
        release_home_store(self.settings)

    @property
    def index(self) -> ChromaIndex:
        """The vector index, bound to the configured embedder's name."""
        return self._get(
            "index",
            lambda: ChromaIndex(
                client=self._chroma_client(),
                embedder_name=self.settings.embedder.model,
                keyword=keyword_index(self.settings, self._database()),
                embed=self._embed_documents,
                embedder_backend=self.settings.embedder.backend,
            ),
        )

    def _embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        # For the index to rebuild vectors an interrupted write damaged: the embedder is
        # built only if that happens.
        return self.embedder.embed_documents(texts)

    @property
    def ingestor(self) -> Ingestor:
        """The ingest pipeline."""
        c, i = self.settings.chunking, self.settings.ingest
        return self._get(
            "ingestor",
            lambda: Ingestor(
                index=self.index,
                embedder=self.embedder,
                chunk_size=c.chunk_size,
                chunk_overlap=c.chunk_overlap,
                pdf_timeout_s=i.pdf_timeout_s,
                pdf_memory_mb=i.pdf_memory_mb,
                parse_workers=i.parse_workers,
                ocr_languages=self._ocr_languages(),
                ocr_timeout_s=i.ocr_timeout_s,
                footnotes=i.footnotes,
                comments=i.comments,
            ),
        )

    def _ocr_languages(self) -> str | None:
        """The OCR languages, or None when OCR is off or Tesseract is missing (said once)."""
        if self.settings.ingest.ocr == "off":
            return None
        missing = ocr_unavailable()
        if missing:
            logger.warning("%s", missing)
            return None
        return self.settings.ingest.ocr_languages

    @property
    def rag(self) -> Rag:
        """The question-answering use case."""
        return self._get("rag", self._build_rag)

    @property
    def retriever(self) -> Retriever:
        """Search over the index with the configured mode, reranker and diversification."""
        r = self.settings.retrieval
        return self._get(
            "retriever",
            lambda: Retriever(
                index=self.index,
                embedder=self.embedder,
                top_k=r.top_k,
                mode=r.mode,
                candidates=r.candidates,
                rrf_k=r.rrf_k,
                keyword_weight=r.keyword_weight,
                fusion=r.fusion,
                mmr_lambda=r.mmr_lambda,
                reranker=self.reranker,
            ),
        )

    @property
    def reranker(self) -> Reranker | None:
        """The cross-encoder reranker, if one is configured."""
        r = self.settings.retrieval
        return self._get(
            "reranker",
            lambda: (
                CrossEncoderReranker(
                    model=r.reranker,
                    device=self.settings.embedder.device,
                    model_thread=self.model_thread,
                )
                if r.reranker
                else None
            ),
        )

    @property
    def adapters(self) -> AdapterStore:
        """The fine-tuned adapters under RAGQA_HOME/adapters."""
        return self._get("adapters", lambda: AdapterStore(self.settings.home / "adapters"))

    def _adapter_path(self, name: str) -> Path:
        """The folder of adapter `name`, if it was trained on the configured base model."""
        found = self.adapters.get(name)
        trained_on, serving = found.info.get("base_model"), self.settings.generator.model
        if trained_on != serving:
            raise AdapterUnavailableError(
                f"Adapter {name!r} was trained on {trained_on!r}, but the generator is "
                f"{serving!r}: train it again on this model, or serve that one."
            )
        return found.path

    @property
    def keys(self) -> KeyStore:
        """The API keys callers present (`ragqa keys`)."""
        return self._get("keys", lambda: KeyStore(self.shared(self.settings.keys_path)))

    @property
    def feedback(self) -> FeedbackStore:
        """Recorded answers and the ratings their users gave."""
        days = self.settings.feedback.keep_unrated_days
        place = self.shared(self.settings.feedback_path)
        return self._get("feedback", lambda: FeedbackStore(place, keep_unrated_days=days))

    def shared(self, path: Path) -> Path | Database:
        """Where a table lives: the SQLite file `path`, or the database servers share."""
        return table_place(path, self._database())

    def _database(self) -> PostgresDatabase | None:
        return self._get("database", lambda: open_shared_database(self.settings))

    @property
    def templates(self) -> TemplateLibrary:
        """The built-in prompt templates plus those in the templates folder."""
        return self._get("templates", lambda: TemplateLibrary(self.settings.answers.templates_dir))

    def _build_rag(self) -> Rag:
        a = self.settings.answers
        return Rag(
            searcher=self.retriever,
            generator=self.generator,
            templates=self.templates,
            template=a.template,
            collection_templates=a.collection_templates,
            min_score=self.settings.retrieval.min_score,
            citation_min_support=a.citation_min_support,
            answer_min_support=a.answer_min_support,
            history_max_tokens=a.history_max_tokens,
            rewrite_followups=a.rewrite_followups,
            max_question_chars=self.settings.server.max_question_chars,
            extractor=SentenceExtractor(
                embedder=self.embedder, max_sentences=a.extractive_max_sentences,
                min_score=a.extractive_min_score, weak_coverage=a.weak_evidence_coverage,
                weak_similarity=a.weak_evidence_similarity, dense_limit=a.extractive_dense_limit,
            ),
            mode=a.mode, context=a.context, extractive_top_k=a.extractive_top_k,
            default_adapter=self.adapters.default, check_adapter=self._adapter_path,
            refusal_policy=a.refusal_policy,
        )  # fmt: skip

    def warm_up(self) -> None:
        """Open the store and load every model now: embedder, generator and reranker.

        Requests wait for this: two threads importing torch and chromadb at the same time can
        see half-initialised modules (numpy's typing) and fail.
        """
        with self._lock:
            self.index.check()  # opens the store; repairs what a crash damaged
            self.embedder.warm_up()
            self.generator.warm_up()
            if self.reranker is not None:
                self.reranker.warm_up()
            self.ready.set()
