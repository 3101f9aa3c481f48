"""The feedback store: answers recorded, rated, listed, forgotten when nobody rated them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from finetune.feedback import FeedbackStore, InvalidFeedbackError, UnknownAnswerError
from generation.types import Answer, Citation

ANSWER = Answer(
    text="The server listens on port 8000 [1].",
    mode="extractive",
    refused=False,
    citations=(Citation(1, "/docs/serving.md", None, "c1", "It listens on port 8000.", 0.8),),
    template="docs",
    question="Which port?",
)


def test_a_recorded_answer_is_rated_with_a_correction_and_read_back(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    answer_id = store.record(ANSWER, collection="docs")
    assert store.get(answer_id).rating is None
    rated = store.rate(answer_id, "down", correction="Port 8000, set by RAGQA_SERVER__PORT.")
    assert (rated.question, rated.answer, rated.mode, rated.collection) == (
        "Which port?", ANSWER.text, "extractive", "docs",
    )  # fmt: skip
    assert rated.rating == "down" and rated.correction.startswith("Port 8000")
    assert rated.sources[0]["chunk_id"] == "c1" and rated.sources[0]["text"].endswith("8000.")
    # Another store on the same file (a restarted server) sees it.
    again = FeedbackStore(tmp_path / "feedback.sqlite")
    assert again.rated() == [rated]
    assert again.counts() == {"answers": 1, "up": 0, "down": 1}


def test_a_second_rating_replaces_the_first(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite")
    answer_id = store.record(ANSWER, collection=None)
    store.rate(answer_id, "down", correction="wrong", comment="bad")
    store.rate(answer_id, "up")
    [only] = store.rated()
    assert (only.rating, only.correction, only.comment) == ("up", None, None)
    assert store.rated(rating="down") == []


def test_unknown_answers_and_bad_ratings_are_refused(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite")
    answer_id = store.record(ANSWER, collection="docs")
    with pytest.raises(UnknownAnswerError, match="answer_id"):
        store.rate("nope", "up")
    with pytest.raises(InvalidFeedbackError, match="'up' or 'down'"):
        store.rate(answer_id, "meh")
    assert store.counts() == {"answers": 1, "up": 0, "down": 0}


def test_unrated_answers_are_forgotten_after_the_retention_but_rated_ones_kept(
    tmp_path: Path,
) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite", keep_unrated_days=1)
    rated, unrated = store.record(ANSWER, collection="d"), store.record(ANSWER, collection="d")
    store.rate(rated, "up")
    assert store.prune() == 0  # both are new
    assert store.prune(now=2e10) == 1  # far in the future: the unrated one is old
    assert store.get(rated).rating == "up"
    with pytest.raises(UnknownAnswerError):
        store.get(unrated)


def test_threads_record_and_rate_at_once_and_nothing_is_lost(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(20):
                answer_id = store.record(ANSWER, collection="docs")
                store.rate(answer_id, "up" if i % 2 else "down")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.counts() == {"answers": 120, "up": 60, "down": 60}
