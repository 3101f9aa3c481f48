"""The answer a user gets back, the sources it cites, and what the prompt held."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class AnswerMode(StrEnum):
    """How a question is answered: from the model alone, from examples, or from documents."""

    CLOSED_BOOK = "closed_book"
    FEW_SHOT = "few_shot"
    RAG = "rag"
    EXTRACTIVE = "extractive"  # the passages' own sentences, no generator call
    FINETUNED = "finetuned"  # closed book, with a fine-tuned adapter
    FINETUNED_RAG = "finetuned_rag"  # rag, with a fine-tuned adapter


WRITES_FROM_SOURCES = frozenset({AnswerMode.RAG, AnswerMode.FINETUNED_RAG})
RETRIEVES = WRITES_FROM_SOURCES | {AnswerMode.EXTRACTIVE}
USES_ADAPTER = frozenset({AnswerMode.FINETUNED, AnswerMode.FINETUNED_RAG})


@dataclass(frozen=True)
class Citation:
    """A source given to the model and cited by the answer as [n].

    `support` is the share of the citing sentence's content words found in the source
    (None when not measured).
    """

    n: int
    source: str
    page: int | None
    chunk_id: str
    text: str
    score: float
    support: float | None = None
    start: int = 0  # character offset of the chunk in its page
    location: str = ""  # for a reader: "page 3 · Install", "slide 4", "sheet Prices, rows 2-9"
    highlight: tuple[int, int] | None = None  # span of `text` that backs the citing sentence

    def to_dict(self) -> dict[str, object]:
        """JSON shape of a citation."""
        return {
            "n": self.n,
            "source": self.source,
            "page": self.page,
            "location": self.location,
            "start": self.start,
            "chunk_id": self.chunk_id,
            "text": self.text,
            "score": round(self.score, 4),
            "support": None if self.support is None else round(self.support, 4),
            "highlight": list(self.highlight) if self.highlight else None,
        }


@dataclass(frozen=True)
class DroppedSource:
    """A retrieved chunk left out of the prompt, and why."""

    chunk_id: str
    source: str
    page: int | None
    score: float
    tokens: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        """JSON shape."""
        return {
            "chunk_id": self.chunk_id, "source": self.source, "page": self.page,
            "score": round(self.score, 4), "tokens": self.tokens, "reason": self.reason,
        }  # fmt: skip


@dataclass(frozen=True)
class ContextReport:
    """How the prompt used the model's window: what went in and what did not fit."""

    window: int
    prompt_tokens: int
    answer_budget: int
    used: int
    dropped: tuple[DroppedSource, ...] = ()
    history_turns_dropped: int = 0

    def to_dict(self) -> dict[str, object]:
        """JSON shape."""
        return {
            "window": self.window,
            "prompt_tokens": self.prompt_tokens,
            "answer_budget": self.answer_budget,
            "sources_used": self.used,
            "dropped": [d.to_dict() for d in self.dropped],
            "history_turns_dropped": self.history_turns_dropped,
        }


@dataclass(frozen=True)
class Answer:
    """A generated answer.

    `citations_inferred` is True when the model cited nothing and the citations are the given
    sources that best support the answer, rather than ones it named. `refusal_reason` says why
    an answer was refused: low_retrieval_score, weak_evidence, no_answer, model_refused,
    unsupported_answer, nothing_extracted, degenerate_answer, prompt_leak (it repeats the
    model's instructions) or secret_leak (it holds an API key). `replaced_reason` says why the
    generated answer failed verification and was replaced (by the extractive answer in rag
    mode).
    """

    text: str
    mode: str
    refused: bool
    citations: tuple[Citation, ...]
    citations_inferred: bool = False
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    template: str = ""
    question: str = ""
    standalone_question: str | None = None
    refusal_reason: str | None = None
    support: float | None = None
    unsupported_citations: tuple[int, ...] = ()
    invalid_citations: tuple[int, ...] = ()
    context: ContextReport | None = None
    completion_tokens: int = 0
    replaced_reason: str | None = None
    answer_id: str | None = None  # set where answers are recorded (the server), for feedback
    adapter: str | None = None  # the fine-tuned adapter that wrote it

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of `ragqa ask --json` and `POST /api/chat`."""
        return {
            "answer_id": self.answer_id,
            "answer": self.text,
            "mode": self.mode,
            "adapter": self.adapter,
            "template": self.template,
            "question": self.question,
            "standalone_question": self.standalone_question,
            "refused": self.refused,
            "refusal_reason": self.refusal_reason,
            "support": None if self.support is None else round(self.support, 4),
            "citations": [c.to_dict() for c in self.citations],
            "citations_inferred": self.citations_inferred,
            "unsupported_citations": list(self.unsupported_citations),
            "invalid_citations": list(self.invalid_citations),
            "context": None if self.context is None else self.context.to_dict(),
            "completion_tokens": self.completion_tokens,
            "replaced_reason": self.replaced_reason,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }
