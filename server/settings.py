"""All configuration, read from RAGQA_* environment variables (nested with __) or a .env file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.types import Fusion, SearchMode
from server.finetune_settings import FeedbackSettings
from server.model_settings import (
    BUILTIN_EMBEDDER,
    BUILTIN_GENERATOR,
    EmbedderSettings,
    GeneratorSettings,
)
from server.server_settings import ServerSettings

__all__ = ["BUILTIN_EMBEDDER", "BUILTIN_GENERATOR", "Settings"]  # one place to import


class ChunkingSettings(BaseModel):
    """How documents are cut into chunks, in tokens of the embedder's tokenizer.

    The size is capped at the embedder's window, so no chunk is silently truncated.
    """

    chunk_size: int = Field(
        default=200, ge=16, le=8192,
        description="Largest chunk, in tokens of the embedding model (capped at its window).",
    )  # fmt: skip
    chunk_overlap: int = Field(
        default=30, ge=0, description="Tokens shared by neighbouring chunks."
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size "
                f"({self.chunk_size})"
            )
        return self


class IngestSettings(BaseModel):
    """Limits on parsing untrusted files, and parallelism."""

    pdf_timeout_s: float = Field(
        default=120.0, gt=0, description="Wall-clock limit for parsing one PDF, in seconds."
    )
    pdf_memory_mb: int = Field(
        default=2048, ge=128, description="Memory limit for the process parsing one PDF."
    )
    parse_workers: int = Field(
        default=2, ge=1, le=64, description="Files parsed in parallel while others are embedded."
    )
    ocr: Literal["auto", "off"] = Field(
        default="auto",
        description="Read scanned PDF pages and images (.png, .jpg, .tiff) by OCR with Tesseract: "
        "`auto` when Debian's tesseract-ocr is installed (a file that needs it says so when it "
        "is not), `off` never.",
    )  # fmt: skip
    ocr_languages: str = Field(
        default="eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description="Tesseract languages for OCR, like `eng` or `eng+deu` (each needs its "
        "tesseract-ocr-<lang> package).",
    )  # fmt: skip
    footnotes: bool = Field(
        default=True,
        description="Keep the footnotes of Word (.docx) and OpenDocument (.odt) files, each after "
        "the paragraph that cites it (`Footnote 1: ...`).",
    )  # fmt: skip
    comments: bool = Field(
        default=False,
        description="Keep reviewers' comments of Word and OpenDocument files (`Comment by Ana: "
        "...`, after the paragraph they are on). Off by default: comments are often drafts or "
        "internal remarks a reader of the answers should not see.",
    )  # fmt: skip
    ocr_timeout_s: float = Field(
        default=900.0, gt=0,
        description="Wall-clock limit for one file read by OCR (a page takes seconds), in seconds.",
    )  # fmt: skip


class RetrievalSettings(BaseModel):
    """How chunks are found and how many are given to the generator."""

    top_k: int = Field(default=4, ge=1, le=50, description="Chunks given to the model as sources.")
    mode: SearchMode = Field(
        default=SearchMode.HYBRID,
        description="`dense`, `keyword` (BM25) or `hybrid` (both, fused).",
    )
    # score: hit@5 0.768 vs 0.707 (rrf) on covid_qa; Python FAQ 0.949 vs 0.954, MRR 0.889 vs
    # 0.867 (bench retrieval).
    fusion: Fusion = Field(
        default=Fusion.SCORE,
        description="Hybrid fusion: `score` (cosine + relative BM25) or `rrf` (reciprocal rank).",
    )
    candidates: int = Field(
        default=20, ge=1, le=1000,
        description="Candidates per ranker before fusion and reranking.",
    )  # fmt: skip
    rrf_k: int = Field(
        default=60, ge=1, description="Reciprocal rank fusion constant (`rrf` fusion)."
    )
    keyword_weight: float = Field(
        default=1.0,
        ge=0.0,
        le=10.0,
        description="Weight of the BM25 side in hybrid fusion (dense is 1).",
    )
    mmr_lambda: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Off by default; e.g. `0.7` to diversify the chosen chunks (MMR).",
    )
    reranker: str | None = Field(
        default=None,
        description="A sentence-transformers CrossEncoder id or folder to rerank candidates.",
    )
    # 0.2: no false refusals on ClapNQ or covid_qa answerable questions (bench abstention),
    # while off-topic questions (best cosine around 0.1) are refused.
    min_score: float = Field(
        default=0.2,
        ge=-1.0,
        le=1.0,
        description="Below this best cosine score, answer 'not in the documents' without "
        "generating.",
    )


class AnswerSettings(BaseModel):
    """How answers are written, checked and refused."""

    # extractive: the best F1 and key phrases of every mode on the user guide, covid_qa and the
    # Python FAQ, no degenerate answer, all cited, in milliseconds (docs/asking.md, the table).
    mode: Literal["rag", "extractive", "closed_book", "few_shot"] = Field(
        default="extractive",
        description="The answer mode when a request names none (see `docs/asking.md`, Modes).",
    )
    # sentences: user guide F1 0.172 against 0.140 (key phrases 63% against 53%), covid_qa
    # 0.215 against 0.195, Python FAQ 0.346 against 0.358 (30 questions each; docs/asking.md).
    context: Literal["chunks", "sentences"] = Field(
        default="sentences",
        description="What rag shows the generator: whole retrieved `chunks`, or only their "
        "`sentences` that best match the question, with their [n].",
    )
    extractive_top_k: int = Field(
        default=10, ge=1, le=100,
        description="Passages an extractive answer chooses its sentences from (it has no "
        "prompt to fit, so more than `RAGQA_RETRIEVAL__TOP_K`).",
    )  # fmt: skip
    extractive_max_sentences: int = Field(
        default=2, ge=1, le=10,
        description="Most sentences in an extractive answer (plus one that completes each).",
    )  # fmt: skip
    # 16: the same F1 and key phrases as embedding all on every set, covid_qa p50 377 -> 168 ms.
    extractive_dense_limit: int = Field(
        default=16, ge=1, le=1000,
        description="Sentences compared to the question by meaning (embedded), the best by "
        "shared words and passage score; the rest score by words alone. Fewer is faster.",
    )  # fmt: skip
    extractive_min_score: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="An extractive answer whose best sentence scores below this is refused "
        "(`nothing_extracted`): the sources hold nothing close enough to the question.",
    )  # fmt: skip
    # 0.5 and 0.7: ClapNQ unanswerable questions refused 32% (answerable 9%), and no user-guide
    # or Python FAQ question, 2% of covid_qa (bench answers; docs/asking.md, Refusals).
    weak_evidence_coverage: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Strict answers are refused (`weak_evidence`) when none of the three best "
        "passages holds this share of the question's content words and no sentence of them "
        "has a cosine of `weak_evidence_similarity` to the question; 0 turns it off.",
    )  # fmt: skip
    weak_evidence_similarity: float = Field(
        default=0.7, ge=-1.0, le=1.0,
        description="See `weak_evidence_coverage`: a sentence this close to the question in "
        "meaning counts as evidence even in other words.",
    )  # fmt: skip
    # evidence: the 30-minute covid_qa RAFT adapter refused 68% of answerable covid_qa
    # questions by itself; kept from opening with the refusal, F1 0.07 -> 0.24 on 40 (the base
    # model never refuses by itself there). docs/fine-tuning.md, Refusal.
    refusal_policy: Literal["evidence", "model"] = Field(
        default="evidence",
        description="Who refuses once a strict template's sources passed the evidence check "
        "(`weak_evidence_coverage`): `evidence` (the check and answer verification; the model "
        "may not open its reply with the refusal) or `model` (it may also refuse by itself).",
    )  # fmt: skip
    template: str = Field(
        default="docs",
        description="Default prompt template: `docs`, `support`, `extract`, or one of yours.",
    )
    templates_dir: Path | None = Field(
        default=None,
        description="A folder of TOML templates that add to or replace the built-in ones.",
    )
    collection_templates: dict[str, str] = Field(
        default_factory=dict,
        description='JSON: template per collection, e.g. `{"helpdesk": "support"}`.',
    )
    citation_min_support: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Share of a sentence's content words its cited source must hold, else the "
        "citation is flagged.",
    )  # fmt: skip
    # 0.4: the most ClapNQ unanswerable refusals (18%) with at most 10% of answerable questions
    # falsely refused (8.7%), the same rule as min_score (bench refusal, 300 + 300).
    answer_min_support: float = Field(
        default=0.4, ge=0.0, le=1.0,
        description="Strict templates refuse answers whose content words the sources hold less "
        "than this.",
    )  # fmt: skip
    history_max_tokens: int = Field(
        default=1024,
        ge=0,
        le=100_000,
        description="Earlier conversation turns kept in the prompt, in tokens.",
    )
    rewrite_followups: bool = Field(
        default=True, description="Rewrite follow-up questions to stand alone before retrieval."
    )


class ChromaSettings(BaseModel):
    """The vector store: embedded under HOME/chroma unless a Chroma server host is set."""

    host: str | None = Field(default=None, description="Chroma server host; unset means embedded.")
    port: int = Field(default=8000, ge=1, le=65535, description="Chroma server port.")
    ssl: bool = Field(default=False, description="Use HTTPS to reach the Chroma server.")
    share_home: bool = Field(
        default=True,
        description="`ragqa serve` serves the home's embedded store to all its workers and to "
        "ragqa commands run meanwhile (a Chroma server on loopback). false: the server owns the "
        "store itself (one worker; 10-30% more searches/s on 2 CPUs; commands wait for it).",
    )
    lock_timeout_s: float = Field(
        default=30.0, ge=0, le=86_400,
        description="How long a command waits for another process to release an embedded "
        "store before it gives up (while `ragqa serve` runs, processes share the home at once).",
    )  # fmt: skip


class DatabaseSettings(BaseModel):
    """Where several ragqa servers share keywords, ingest jobs, keys, feedback and rate limits."""

    url: SecretStr | None = Field(
        default=None,
        description="A PostgreSQL URL (`postgresql://user:password@host:5432/ragqa`) that every "
        "server behind one Chroma server names; unset means SQLite files in the home (one "
        "machine). Kept secret: never logged.",
    )


class Settings(BaseSettings):
    """The one object that reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="RAGQA_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    home: Path = Field(
        default=Path(".ragqa"),
        description="Everything ragqa writes: the Chroma store (`chroma/`), the keyword index "
        "(`keyword.sqlite`), uploaded files (`uploads/`), converted models (`models/`) and "
        "recorded answers with their feedback (`feedback.sqlite`) and training datasets "
        "(`datasets/`).",
    )
    collection: str = Field(
        default="docs", description="The collection used when a command or request names none."
    )
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answers: AnswerSettings = Field(default_factory=AnswerSettings)
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)

    @property
    def chroma_path(self) -> Path:
        """The embedded Chroma store."""
        return self.home / "chroma"

    @property
    def feedback_path(self) -> Path:
        """Recorded answers and their ratings."""
        return self.home / "feedback.sqlite"

    @property
    def keys_path(self) -> Path:
        """API keys (hashed), their roles and collections."""
        return self.home / "keys.sqlite"

    @property
    def datasets_path(self) -> Path:
        """Built training datasets, a folder per name and version."""
        return self.home / "datasets"

    @property
    def model_cache_dir(self) -> Path:
        """Where converted generator models are kept."""
        return self.generator.cache_dir or self.home / "models"
