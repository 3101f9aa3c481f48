"""History validation and follow-up rewriting."""

from __future__ import annotations

import pytest

from generation.conversation import (
    InvalidHistoryError,
    accept_rewrite,
    rewrite_prompt,
    standalone_question,
    validate_history,
)
from tests.fakes import FakeGenerator

HISTORY = [{"role": "user", "content": "What is ragqa?"},
           {"role": "assistant", "content": "A question-answering server."}]  # fmt: skip


@pytest.mark.parametrize(
    "history",
    ["text", [{"role": "system", "content": "x"}], [{"role": "user"}], [["user", "x"]],
     [{"role": "user", "content": "x"}] * 51],
)  # fmt: skip
def test_bad_histories_are_refused_with_the_expected_shape(history: object) -> None:
    with pytest.raises(InvalidHistoryError, match=r"role|limit|list"):
        validate_history(history)


def test_valid_history_is_copied_without_extra_keys() -> None:
    extra = [{"role": "user", "content": "hi", "id": 7}]
    assert validate_history(extra) == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("rewrite", "expected"),
    [
        ("How do I install ragqa?", "How do I install ragqa?"),
        ("Standalone question: How do I install ragqa?", "How do I install ragqa?"),
        ('"How do I install ragqa?"\nExtra line', "How do I install ragqa?"),
        ("Ragqa is installed with pip.", "What is ragqa? How do I install it?"),  # answered
        ("", "What is ragqa? How do I install it?"),
        ("install " * 200, "What is ragqa? How do I install it?"),  # rambling
    ],
)
def test_implausible_rewrites_fall_back_to_joining_the_questions(
    rewrite: str, expected: str
) -> None:
    assert accept_rewrite(rewrite, "How do I install it?", HISTORY) == expected


def test_no_history_no_rewrite() -> None:
    generator = FakeGenerator()
    assert standalone_question(generator, [], "What is it?") == "What is it?"
    assert generator.prompts == []


def test_rewrite_prompt_holds_the_conversation_and_the_follow_up() -> None:
    generator = FakeGenerator("How do I install ragqa?")
    assert standalone_question(generator, HISTORY, "How do I install it?") == (
        "How do I install ragqa?"
    )
    user = generator.prompts[0][-1]["content"]
    assert "User: What is ragqa?" in user and "Follow-up question: How do I install it?" in user
    assert generator.prompts[0] == rewrite_prompt(HISTORY, "How do I install it?")
