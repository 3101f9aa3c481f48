"""The JSON the API answers with, as pydantic models: the response half of `/openapi.json`
(the request half is `server.bodies`). The routes build these shapes with `to_dict()`; the
schemathesis test checks every response against them, so the two cannot drift apart."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    """A response body; extra fields may be added later without breaking clients."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(Out):
    code: str = Field(description="Machine-readable: bad_request, unauthorized, busy, ...")
    message: str = Field(description="What went wrong and what to do.")


class ErrorOut(Out):
    """Every error, whatever the route."""

    error: ErrorDetail


class Health(Out):
    status: Literal["ok"]


class Readiness(Out):
    status: Literal["ready", "not_ready"]
    models: str = Field(description="loaded, loading, or failed: <why>")
    store: str = Field(description="reachable, or unreachable: <error type>")


class Hit(Out):
    chunk_id: str
    source: str
    page: int | None
    start: int
    section: str | None
    location: str
    text: str
    score: float
    details: dict[str, float] = Field(description="Per-retriever scores (dense, keyword, ...).")


class SearchOut(Out):
    query: str
    collection: str
    hits: list[Hit]


class Citation(Out):
    n: int = Field(description="The [n] the answer cites.")
    source: str
    page: int | None
    location: str
    start: int = Field(description="Character offset of the passage in its page.")
    chunk_id: str
    text: str = Field(description="The cited passage.")
    score: float
    support: float | None = Field(description="Share of the citing sentence found in it.")
    highlight: list[int] | None = Field(
        description="[start, end) of the passage's sentence that backs the citing sentence."
    )


class Dropped(Out):
    chunk_id: str
    source: str
    page: int | None
    score: float
    tokens: int
    reason: str


class ContextOut(Out):
    window: int
    prompt_tokens: int
    answer_budget: int
    sources_used: int
    dropped: list[Dropped]
    history_turns_dropped: int


class AnswerOut(Out):
    """An answer with its citations, as POST /api/chat gives it (and the `answer` event)."""

    answer_id: str | None = Field(description="Rate it with POST /api/feedback.")
    answer: str
    mode: str
    adapter: str | None
    template: str
    question: str
    standalone_question: str | None
    refused: bool
    refusal_reason: str | None
    support: float | None
    citations: list[Citation]
    citations_inferred: bool
    unsupported_citations: list[int] = Field(description="Cited [n] the passage does not back.")
    invalid_citations: list[int] = Field(description="Cited [n] that name no given source.")
    context: ContextOut | None
    completion_tokens: int
    replaced_reason: str | None
    timings_ms: dict[str, float]


class CompareOut(Out):
    question: str
    collection: str
    answers: dict[str, AnswerOut] = Field(description="Each mode's answer, by mode.")


class CollectionRow(Out):
    name: str
    documents: int
    chunks: int


class CollectionsOut(Out):
    collections: list[CollectionRow]
    default: str | None = Field(description="The collection used when a request names none.")
    role: Literal["admin", "writer", "reader"] = Field(description="The caller key's role.")
    may_write: bool = Field(description="Whether the key may add and delete documents.")


class DocumentOut(Out):
    source: str
    content_hash: str
    pages: int
    chunks: int
    ingested_at: str
    status: Literal["ready", "failed"]
    error: str | None
    attached_to: str | None


class DocumentsOut(Out):
    collection: str
    documents: list[DocumentOut]


class PathError(Out):
    path: str
    error: str


class Skipped(Out):
    path: str
    reason: str


class AttachmentError(Out):
    source: str
    error: str


class IngestReportOut(Out):
    files_ok: int
    files_failed: int
    files_unchanged: int
    chunks_added: int
    chunks_removed: int
    errors: list[PathError]
    files_skipped: int
    skipped: list[Skipped]
    ocr_pages: dict[str, list[int]]
    attachments: list[str] = Field(description="Documents read from inside files (e-mail).")
    attachment_errors: list[AttachmentError]


class UploadOut(IngestReportOut):
    job_id: str


class JobStarted(Out):
    job_id: str
    status_url: str


class JobOut(Out):
    job_id: str
    collection: str
    status: Literal["queued", "running", "done", "failed"]
    files_total: int
    files_done: int
    chunks_added: int
    elapsed_s: float
    report: IngestReportOut | None
    error: str | None


class Deleted(Out):
    deleted: str
    chunks_removed: int | None = None


class FeedbackOut(Out):
    answer_id: str
    created: float
    question: str
    answer: str
    mode: str
    collection: str | None
    rating: Literal["up", "down"] | None
    correction: str | None
    comment: str | None


class ModelRow(Out):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelsOut(Out):
    object: Literal["list"]
    data: list[ModelRow]


class Message(Out):
    role: Literal["assistant"]
    content: str


class Choice(Out):
    index: int
    message: Message
    finish_reason: Literal["stop", "length"]


class Usage(Out):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionOut(Out):
    """The OpenAI chat completion (ragqa models add the answer's fields: citations, ...)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    ragqa: AnswerOut | None = Field(
        default=None, description="For ragqa models: the answer with its citations."
    )
