"""What the Rag use case takes and gives: the request, the searcher it needs from retrieval,
streaming events, and the state of one answer while it is made."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from generation.prompts import Example, PromptTemplate
from generation.types import USES_ADAPTER, Answer, AnswerMode, ContextReport
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
    adapter: str | None = None  # finetuned modes: the adapter (None: the default one)


# Who may refuse once the sources passed the evidence check: "evidence" (the check and the
# verifier; the model may not open with the refusal) or "model" (it may refuse by itself).
REFUSAL_POLICIES = ("evidence", "model")


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
    # The refusal, when the evidence check found the sources can answer: the reply may not
    # open with it (a fine-tuned model learns to refuse too often; see docs/fine-tuning.md).
    avoid_opening: str | None = None


@dataclass(frozen=True)
class Event:
    """A streaming event: "retrieval" (sources), "token" (text) or "answer" (the Answer)."""

    kind: str
    data: Any


def validate(
    request: Request, *, default_mode: str, default_adapter: Callable[[], str | None],
    max_chars: int, check_adapter: Callable[[str], object] | None = None,
) -> str:  # fmt: skip
    """The request's question, stripped; its mode and adapter filled in from the defaults.
    Raises InvalidQuestionError with what to do."""
    modes = tuple(AnswerMode)
    request.mode = request.mode or default_mode
    if request.mode in USES_ADAPTER:
        request.adapter = request.adapter or default_adapter()
        if not request.adapter:
            raise InvalidQuestionError(
                f"Mode {request.mode!r} needs a fine-tuned adapter: name one (adapter), or "
                "promote one to the default (`ragqa adapters promote`); `ragqa finetune` "
                "trains them."
            )
        if check_adapter is not None:  # before retrieval: an unknown one is an error, not a refusal
            check_adapter(request.adapter)
    elif request.adapter:
        raise InvalidQuestionError(
            f"An adapter applies to the modes finetuned and finetuned_rag, not {request.mode!r}."
        )
    if request.mode not in modes:
        raise InvalidQuestionError(
            f"Unknown mode {request.mode!r}; choose one of: {', '.join(modes)}"
        )
    question = request.question.strip()
    if not question:
        raise InvalidQuestionError("The question is empty; ask something about your documents.")
    if len(question) > max_chars:
        raise InvalidQuestionError(
            f"The question is {len(question)} characters long; the limit is {max_chars}. "
            "Shorten it."
        )
    return question


def generator_options(prepared: Prepared) -> dict[str, Any]:
    """The generator's adapter and avoid_opening arguments, each only when set (fakes and
    remote generators need not know the words otherwise)."""
    options: dict[str, Any] = {}
    if prepared.request.adapter:
        options["adapter"] = prepared.request.adapter
    if prepared.avoid_opening:
        options["avoid_opening"] = prepared.avoid_opening
    return options
