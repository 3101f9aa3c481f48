"""The context budget: fit history, examples and retrieved sources into the model's window,
best first, and report whatever did not fit instead of truncating it silently."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from generation.generator import PromptTooLongError
from generation.prompts import Example, Message, PromptTemplate, build_messages
from generation.types import ContextReport, DroppedSource
from retrieval.types import ScoredChunk

CountTokens = Callable[[Sequence[Message]], int]


@dataclass(frozen=True)
class PackedPrompt:
    """The messages to send, the sources in them (numbered from 1), and the report."""

    messages: list[dict[str, str]]
    hits: list[ScoredChunk]
    report: ContextReport


def bound_history(
    history: Sequence[Message], count_tokens: CountTokens, max_tokens: int
) -> list[Message]:
    """The most recent turns whose tokens fit in `max_tokens`, whole turns only."""
    kept: list[Message] = []
    used = 0
    for message in reversed(history):
        cost = count_tokens([message])
        if used + cost > max_tokens:
            break
        kept.insert(0, message)
        used += cost
    return kept


def pack_prompt(
    template: PromptTemplate,
    question: str,
    hits: Sequence[ScoredChunk] | None,
    *,
    count_tokens: CountTokens,
    window: int,
    answer_budget: int,
    examples: Sequence[Example] = (),
    history: Sequence[Message] = (),
) -> PackedPrompt:
    """Messages that fit `window` with `answer_budget` tokens left for the answer.

    Oldest history turns go first when even the bare question does not fit; then sources are
    added best first, each only if it still fits (a later, shorter one may). `hits` None means
    no retrieval.
    """
    limit = window - answer_budget
    if limit <= 0:
        raise PromptTooLongError(
            f"The answer budget ({answer_budget} tokens) fills the model's {window}-token window; "
            "lower RAGQA_GENERATOR__MAX_NEW_TOKENS."
        )
    history = list(history)

    def render(chosen: Sequence[ScoredChunk] | None) -> list[dict[str, str]]:
        return build_messages(template, question, chosen, examples=examples, history=history)

    empty: list[ScoredChunk] | None = None if hits is None else []
    dropped_turns = 0
    while (tokens := count_tokens(render(empty))) > limit and history:
        history.pop(0)
        dropped_turns += 1
    if tokens > limit:
        raise PromptTooLongError(
            f"The question and instructions take {tokens} tokens; with {answer_budget} for the "
            f"answer they exceed the model's {window}-token window. Ask a shorter question."
        )
    chosen: list[ScoredChunk] = []
    dropped: list[DroppedSource] = []
    for hit in hits or []:
        trial = count_tokens(render([*chosen, hit]))
        if trial <= limit:
            chosen.append(hit)
            tokens = trial
        else:
            c = hit.chunk
            cost = count_tokens([{"role": "user", "content": c.text}])
            dropped.append(DroppedSource(c.id, c.source, c.page, hit.score, cost,
                                         "does not fit the context window"))  # fmt: skip
    report = ContextReport(
        window=window, prompt_tokens=tokens, answer_budget=answer_budget, used=len(chosen),
        dropped=tuple(dropped), history_turns_dropped=dropped_turns,
    )  # fmt: skip
    return PackedPrompt(messages=render(None if hits is None else chosen), hits=chosen,
                        report=report)  # fmt: skip
