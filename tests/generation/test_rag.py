"""The Rag use case with fakes for search and generation."""

from __future__ import annotations

import pytest

from generation.prompts import REFUSAL
from generation.rag import InvalidQuestionError, Rag, is_refusal, tidy_answer
from retrieval.types import Chunk, ScoredChunk
from tests.fakes import FakeGenerator


class FakeSearcher:
    def __init__(self, hits: list[ScoredChunk]) -> None:
        self.hits = hits
        self.questions: list[tuple[str, str]] = []

    def search(
        self, question: str, *, collection: str, k: int | None = None, mode: str | None = None,
        where: object = None,
    ) -> list[ScoredChunk]:  # fmt: skip
        self.questions.append((question, collection))
        return self.hits


HITS = [
    ScoredChunk(Chunk(id="a", text="Ragqa serves answers.", source="/docs/a.md"), 0.9),
    ScoredChunk(Chunk(id="b", text="Use make run to start.", source="/docs/b.md"), 0.7),
]


def test_answer_cites_the_chunks_the_model_was_given() -> None:
    generator = FakeGenerator("Run make run [2].")
    searcher = FakeSearcher(HITS)
    answer = Rag(searcher=searcher, generator=generator).answer(" How? ", collection="docs")
    assert searcher.questions == [("How?", "docs")]
    assert answer.text == "Run make run [2]."
    assert answer.mode == "rag"
    assert not answer.refused
    assert [c.chunk_id for c in answer.citations] == ["b"]
    assert "Use make run to start." in generator.prompts[0][-1]["content"]
    assert set(answer.timings_ms) == {"retrieval", "generation", "total"}
    data = answer.to_dict()
    assert set(data) >= {"answer", "mode", "refused", "citations", "timings_ms"}
    assert set(data["citations"][0]) >= {"n", "source", "page", "chunk_id", "text"}  # type: ignore[index]


def test_refusal_is_detected_and_normalised() -> None:
    generator = FakeGenerator("I could not find the answer in the documents, sorry.")
    answer = Rag(searcher=FakeSearcher(HITS), generator=generator).answer("q?", collection="c")
    assert answer.refused
    assert answer.text == REFUSAL
    assert answer.citations  # the closest sources are still shown


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        (REFUSAL, True),
        ("I could not find the answer", True),
        ("I", False),
        ("Ragqa answers questions [1].", False),
        ("", False),
    ],
)
def test_is_refusal(text: str, refused: bool) -> None:
    assert is_refusal(text) is refused


@pytest.mark.parametrize(
    ("question", "mode", "message"),
    [
        ("", "rag", "empty"),
        ("   ", "rag", "empty"),
        ("x" * 2001, "rag", "limit is 2000"),
        ("q", "telepathy", "Unknown mode"),
    ],
)
def test_bad_questions_are_refused_before_any_work(question: str, mode: str, message: str) -> None:
    searcher, generator = FakeSearcher(HITS), FakeGenerator()
    with pytest.raises(InvalidQuestionError, match=message):
        Rag(searcher=searcher, generator=generator).answer(question, collection="c", mode=mode)
    assert searcher.questions == [] and generator.prompts == []


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("Set the port [1].\n\nQuestion: How else?\n\nAnswer: ...", "Set the port [1]."),
        ("Paris.\n\nThe answer is:\n\nParis.\n\nThe answer is:", "Paris.\n\nThe answer is:"),
        ("One line.\nSecond line [2].", "One line.\nSecond line [2]."),
        ("Debian is free [1].\n\n[2] (faq.txt)\nCopied source text", "Debian is free [1]."),
        ("[1] (faq.txt) says so.", "[1] (faq.txt) says so."),
        ("  \n\n", ""),
    ],
)
def test_tidy_answer_cuts_run_on_turns_and_repeats(raw: str, tidy: str) -> None:
    assert tidy_answer(raw) == tidy


def test_answer_is_tidied_before_citations_are_read() -> None:
    generator = FakeGenerator("Use make run [2].\n\nQuestion: more?\nAnswer: see [1].")
    answer = Rag(searcher=FakeSearcher(HITS), generator=generator).answer("q?", collection="c")
    assert answer.text == "Use make run [2]."
    assert [c.n for c in answer.citations] == [2]
