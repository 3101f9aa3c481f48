"""What the Rag use case takes and gives: the request, the searcher it needs from retrieval,
streaming events, and the state of one answer while it is made."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from generation.prompts import Example, PromptTemplate
from generation.types import Answer, ContextReport
from retrieval.types import ScoredChunk


class Searcher(Protocol):
    """What generation needs from retrieval."""

    def search(
        self,
        question: str,
        *,
        collection: str,
        k: int | None = None,
        mode: str | None = None,
        where: Any = None,
    ) -> list[ScoredChunk]:
        """The best chunks for `question`, best first (mode and filter are retrieval's)."""
        ...


class InvalidQuestionError(ValueError):
    """A question that cannot be answered as asked (empty, too long, unknown mode)."""


@dataclass
class Request:
    """One question as asked: mode, template, retrieval options, history, examples."""

    question: str
    collection: str
    mode: str | None = None  # None: the server's default mode
    template: str | None = None
    search: Mapping[str, Any] = field(default_factory=dict)
    history: Sequence[Mapping[str, str]] = ()
    examples: Sequence[Example] | None = None
    strict: bool | None = None


@dataclass
class Prepared:
    """Everything decided before generation; `early` is set when no generation is needed."""

    request: Request
    template: PromptTemplate
    strict: bool
    standalone: str | None
    started: float
    timings: dict[str, float]
    messages: list[dict[str, str]] = field(default_factory=list)
    hits: list[ScoredChunk] = field(default_factory=list)
    report: ContextReport | None = None
    early: Answer | None = None


@dataclass(frozen=True)
class Event:
    """A streaming event: "retrieval" (sources), "token" (text) or "answer" (the Answer)."""

    kind: str
    data: Any
