"""Conversations: check the history a request brings, and rewrite a follow-up question into
one that stands alone, so retrieval finds what "it" refers to."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from generation.citations import content_words
from generation.generator import Generator
from generation.prompts import Message

logger = logging.getLogger(__name__)

ROLES = ("user", "assistant")
REWRITE_INSTRUCTION = (
    "Rewrite the follow-up question so it can be understood without the conversation: replace "
    "words like it, they, this and that with what they refer to. Keep the meaning. Reply with "
    "the rewritten question only."
)
_PREFIX = re.compile(r"^\s*(?:standalone|rewritten)?\s*question\s*:\s*", re.IGNORECASE)


class InvalidHistoryError(ValueError):
    """A conversation history that is not a list of user and assistant turns."""


def validate_history(history: object, *, max_turns: int = 50) -> list[dict[str, str]]:
    """The history as a list of {"role", "content"} turns, or a clear error."""
    if not isinstance(history, list | tuple):
        raise InvalidHistoryError('"history" must be a list of {"role", "content"} turns.')
    if len(history) > max_turns:
        raise InvalidHistoryError(f"The history has {len(history)} turns; the limit is "
                                  f"{max_turns}. Send the most recent ones.")  # fmt: skip
    turns = []
    for i, turn in enumerate(history):
        if (not isinstance(turn, dict) or turn.get("role") not in ROLES
                or not isinstance(turn.get("content"), str)):  # fmt: skip
            raise InvalidHistoryError(
                f'History turn {i + 1} must be {{"role": "user" or "assistant", "content": "..."}}.'
            )
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns


def rewrite_prompt(history: Sequence[Message], question: str) -> list[dict[str, str]]:
    """The messages asking the model for a standalone version of `question`."""
    lines = [f"{m['role'].capitalize()}: {m['content'].strip()}" for m in history]
    user = (
        "Conversation:\n" + "\n".join(lines) + f"\n\nFollow-up question: {question.strip()}\n\n"
        "Standalone question:"
    )
    return [{"role": "system", "content": REWRITE_INSTRUCTION}, {"role": "user", "content": user}]


def _last_user_turn(history: Sequence[Message]) -> str:
    return next((m["content"] for m in reversed(history) if m["role"] == "user"), "")


def accept_rewrite(rewrite: str, question: str, history: Sequence[Message]) -> str:
    """The model's rewrite if it is plausible; else the last question joined with this one.

    A plausible rewrite is one line, not much longer than the question plus what it refers
    to, and keeps most of the question's content words (a small model sometimes answers
    the question instead, or drops it).
    """
    line = _PREFIX.sub("", rewrite.strip().split("\n")[0]).strip().strip('"').strip()
    asked = content_words(question)
    kept = len(asked & content_words(line)) / len(asked) if asked else 1.0
    if line and kept >= 0.5 and len(line) <= 2 * len(question) + 200:
        return line
    logger.info("a rewritten question was rejected; falling back to the previous one")
    previous = _last_user_turn(history).strip()
    return f"{previous} {question.strip()}".strip() if previous else question.strip()


def standalone_question(
    generator: Generator, history: Sequence[Message], question: str, *, max_new_tokens: int = 64
) -> str:
    """`question` rewritten to stand alone given `history` (unchanged without history)."""
    if not any(m["role"] == "user" for m in history):
        return question
    generation = generator.generate(
        rewrite_prompt(history, question), max_new_tokens=max_new_tokens, stop=("\n",)
    )
    return accept_rewrite(generation.text, question, history)
