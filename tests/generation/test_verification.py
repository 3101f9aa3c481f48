"""Each verification rule catches its kind of non-answer; a correct answer passes; Rag shows
the extractive answer instead of one that fails."""

from __future__ import annotations

import pytest

from generation.extractive import SentenceExtractor
from generation.rag import Rag, Request
from generation.verification import degenerate, verify
from retrieval.types import Chunk, ScoredChunk
from tests.fakes import FakeGenerator


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("The sources are:", "no content words"),
        ("The chat page:", "lead-in"),
        ('RAGQA_GENERATOR__API_KEY = {"key": "key_key_key_key_key_key_key_key_key', "repetition"),
        ("The model is a mix of [2] and [3]. The [3] is a mix of [4] and [2]. The [4] is a mix "
         "of [2] and [3]. The [2] is a mix of [3] and [4].", "repetition"),
        ("<sources> [1] install.md: run make run", "scaffolding"),
        ("Sources:\n[1] the user guide", "scaffolding"),
        ("... ? !", "no content words"),
    ],
)  # fmt: skip
def test_each_kind_of_non_answer_is_caught(answer: str, reason: str) -> None:
    found = degenerate(answer)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "answer",
    [
        "The server listens on port 8000 by default [1].",
        "Set RAGQA_SERVER__API_KEY; every request must then send it as a bearer token [2].",
        "Three modes: dense, keyword and hybrid [1]. Hybrid is the default [1].",
        "Run:\n\n    make run\n\nthen open http://127.0.0.1:8000 in a browser [1].",
    ],
)
def test_a_real_answer_passes(answer: str) -> None:
    assert verify(answer, ()) is None


def test_citing_a_passage_that_was_not_given_fails() -> None:
    assert verify("It is in the guide [7].", (7,)) == ("it cites passages it was not given ([7])")


HITS = [
    ScoredChunk(Chunk(id="a", text="Ragqa answers questions from your documents.",
                      source="/docs/a.md"), 0.9),
    ScoredChunk(Chunk(id="b", text="The server listens on port 8000 by default.",
                      source="/docs/b.md"), 0.7),
]  # fmt: skip


class Searcher:
    def search(self, question: str, **options: object) -> list[ScoredChunk]:
        return HITS


@pytest.mark.parametrize("reply", ["The sources are:", "It is port 8000 [5]."])
def test_a_failing_rag_answer_is_replaced_by_the_extractive_one(reply: str) -> None:
    rag = Rag(searcher=Searcher(), generator=FakeGenerator(reply), extractor=SentenceExtractor())
    answer = rag.answer(Request("What port does the server listen on?", "docs"))
    assert answer.text == "The server listens on port 8000 by default [2]."
    assert answer.mode == "rag" and not answer.refused
    assert answer.replaced_reason is not None
    assert [c.source for c in answer.citations] == ["/docs/b.md"]
    assert answer.to_dict()["replaced_reason"] == answer.replaced_reason


def test_a_failing_closed_book_answer_is_refused_not_shown() -> None:
    rag = Rag(searcher=Searcher(), generator=FakeGenerator("key_key_key_key_key_key"))
    answer = rag.answer(Request("What is the key?", "docs", mode="closed_book"))
    assert answer.refused and answer.refusal_reason == "degenerate_answer"
    assert answer.replaced_reason == "a repetition loop"


def test_a_good_answer_is_kept_as_written() -> None:
    rag = Rag(searcher=Searcher(), generator=FakeGenerator("Port 8000 by default [2]."))
    answer = rag.answer(Request("What port does the server listen on?", "docs"))
    assert answer.text == "Port 8000 by default [2]." and answer.replaced_reason is None
