"""The Generator seam: what answers need from a language model, and the values it returns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

Message = Mapping[str, str]


class GeneratorBackend(StrEnum):
    """Where answers are generated: here with transformers or CTranslate2 (the same weights,
    converted once), or by an OpenAI-compatible API."""

    TRANSFORMERS = "transformers"
    CTRANSLATE2 = "ctranslate2"
    OPENAI = "openai"


class GeneratorLoadError(Exception):
    """The generator model could not be loaded."""


class AdapterUnavailableError(ValueError):
    """A fine-tuned adapter this generator cannot apply (unknown, other base model, remote)."""


class PromptTooLongError(ValueError):
    """The prompt and the answer budget do not fit in the model's context window."""


def answer_budget(prompt_tokens: int, requested: int | None, limit: int, window: int) -> int:
    """Tokens for the answer: as requested, never more than `limit`; PromptTooLongError when
    the prompt and that budget do not fit in the `window`."""
    budget = min(requested or limit, limit)
    if prompt_tokens + budget > window:
        raise PromptTooLongError(
            f"The prompt takes {prompt_tokens} tokens; with {budget} for the answer it exceeds "
            f"the model's {window}-token window. Ask a shorter question or lower "
            "RAGQA_RETRIEVAL__TOP_K."
        )
    return budget


@dataclass(frozen=True)
class Generation:
    """Generated text and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class Generator(Protocol):
    """Anything that continues a chat."""

    def warm_up(self) -> None:
        """Load the model (or check the endpoint) now rather than on the first question."""
        ...

    @property
    def context_window(self) -> int:
        """The model's maximum sequence length in tokens (prompt plus answer)."""
        ...

    @property
    def max_new_tokens(self) -> int:
        """The longest answer, in tokens; the prompt must leave room for it."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """How many tokens the prompt for `messages` takes."""
        ...

    def stream(
        self, messages: Sequence[Message], *, max_new_tokens: int | None = None,
        stop: Sequence[str] = (), adapter: str | None = None, avoid_opening: str | None = None,
    ) -> Iterator[str]:  # fmt: skip
        """The reply to `messages`, piece by piece as it is generated (by the base model with
        the fine-tuned `adapter` of that name, if given; see `generate` for `avoid_opening`)."""
        ...

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
        adapter: str | None = None,
        avoid_opening: str | None = None,
    ) -> Generation:
        """Reply to `messages` in at most `max_new_tokens` tokens, ending early at a `stop` text
        (with the fine-tuned `adapter` of that name, if given). `avoid_opening`: a text the
        reply must not open with (the refusal, once the evidence says the question has an
        answer); a generator that cannot steer decoding may ignore it."""
        ...
