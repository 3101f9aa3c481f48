"""Each verification rule catches its kind of non-answer; a correct answer passes; Rag shows
the extractive answer instead of one that fails."""

from __future__ import annotations

import pytest

from generation.extractive import SentenceExtractor
from generation.rag import Rag, Request
from generation.verification import Verifier, degenerate, fabricated, verify
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


@pytest.mark.parametrize(
    ("answer", "invented"),
    [
        ("You can delete a document by calling `deleteDocument` on the collection.",
         ["deleteDocument"]),
        ("Call deleteDocument() on it.", ["deleteDocument"]),
        ("Set RAGQA_SERVER__TOKEN to the key.", ["RAGQA_SERVER__TOKEN"]),
        ("The server listens on port 8080 [2].", ["8080"]),
        ("Pass --force to ragqa ingest.", ["--force"]),
        ("Edit /etc/ragqa.conf first.", ["etc/ragqa.conf"]),
    ],
)  # fmt: skip
def test_an_identifier_or_number_no_source_holds_is_caught(
    answer: str, invented: list[str]
) -> None:
    given = "Run ragqa delete PATH; set RAGQA_SERVER__API_KEY."
    evidence = "\n".join([*(h.chunk.text for h in HITS), given])
    found = fabricated(answer, evidence)
    assert found and found[0] in invented


@pytest.mark.parametrize(
    "answer",
    [
        "The server listens on port 8000 by default [2].",
        "Set RAGQA_SERVER__API_KEY [1].",
        "Run `ragqa delete PATH` [1].",
        "1,000 requests [1].",
    ],
)
def test_names_and_numbers_the_sources_hold_are_not_fabricated(answer: str) -> None:
    evidence = "Port 8000 by default. Run ragqa delete PATH. RAGQA_SERVER__API_KEY. 1000 requests"
    assert fabricated(answer, evidence) == []


def _verifier(similarity: list[float] | None = None) -> Verifier:
    def cosine(claims: object, hits: object) -> list[float]:
        assert similarity is not None
        return similarity

    return Verifier(similarity=cosine if similarity is not None else None)


def test_a_sentence_the_sources_do_not_support_fails() -> None:
    verdict = _verifier([0.2]).verify(
        "Ragqa was written by volunteers in Antarctica during winter [1].", HITS
    )
    assert verdict.problem is not None and "do not support" in verdict.problem
    assert "Antarctica" in verdict.problem


def test_a_paraphrase_close_in_meaning_passes_where_words_alone_would_fail() -> None:
    answer = "By default the service accepts connections at 8000 [2]."
    assert _verifier([0.2]).verify(answer, HITS).problem is not None  # few shared words
    assert _verifier([0.8]).verify(answer, HITS).problem is None  # but the same meaning


def test_a_correct_supported_answer_is_kept_as_it_is() -> None:
    answer = "The server listens on port 8000 by default [2]."
    verdict = _verifier([0.9]).verify(answer, HITS, "What port?")
    assert verdict.problem is None and verdict.text == answer
    assert [c.n for c in verdict.check.citations] == [2] and not verdict.check.inferred


def test_an_uncited_answer_gets_the_number_of_the_passage_that_supports_it() -> None:
    verdict = _verifier([0.9]).verify("The server listens on port 8000 by default.", HITS)
    assert verdict.problem is None
    assert verdict.text == "The server listens on port 8000 by default [2]."


def test_an_uncited_answer_no_single_passage_supports_fails() -> None:
    # close in meaning to a passage sentence, but no passage holds half its words
    verdict = _verifier([0.9]).verify(
        "The service accepts connections at 8000 unless configured otherwise.", HITS
    )
    assert verdict.problem is not None and "cites no passage" in verdict.problem


def test_rag_replaces_an_answer_with_an_invented_call() -> None:
    class DeleteSearcher:
        def search(self, question: str, **options: object) -> list[ScoredChunk]:
            text = "To delete a document, run ragqa delete PATH --collection NAME."
            return [ScoredChunk(Chunk(id="d", text=text, source="/docs/d.md"), 0.8)]

    reply = "You can delete a document by calling `deleteDocument` on the collection [1]."
    rag = Rag(searcher=DeleteSearcher(), generator=FakeGenerator(reply),
              extractor=SentenceExtractor())  # fmt: skip
    answer = rag.answer(Request("How do I delete a document?", "docs"))
    assert answer.replaced_reason is not None and "deleteDocument" in answer.replaced_reason
    assert answer.text == "To delete a document, run ragqa delete PATH --collection NAME [1]."


def test_a_near_repeat_that_reads_as_a_loop_once_cited_is_replaced() -> None:
    class CopySearcher:
        def search(self, question: str, **options: object) -> list[ScoredChunk]:
            text = "The shutil module has a copyfile function that can copy files."
            return [ScoredChunk(Chunk(id="c", text=text, source="/docs/c.md"), 0.8)]

    reply = ("The shutil module has a copyfile function that can copy files.\n\n"
             "The copyfile function is a built-in function in Python that allows you to copy "
             "files.\n\nThe copyfile function is a built-in function that allows you to copy "
             "files.\n\nThe")  # fmt: skip
    assert degenerate(reply) is None  # as the model wrote it
    rag = Rag(searcher=CopySearcher(), generator=FakeGenerator(reply),
              extractor=SentenceExtractor())  # fmt: skip
    answer = rag.answer(Request("How do I copy a file?", "docs"))
    assert degenerate(answer.text) is None, answer.text
    assert answer.replaced_reason == "a repetition loop"
