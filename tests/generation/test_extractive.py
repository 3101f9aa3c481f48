"""The extractive answerer: the passages' own sentences that answer the question, cited."""

from __future__ import annotations

from typing import Any

import pytest

from generation.extractive import SentenceExtractor, split_sentences
from generation.rag import Rag, Request
from generation.types import Answer
from generation.verification import degenerate
from retrieval.types import Chunk, ScoredChunk
from tests.fakes import FakeEmbedder, FakeGenerator

GUIDE = """# Serving

`ragqa serve` starts the chat page and the HTTP API. The server listens on
port 8000 by default; set RAGQA_SERVER__PORT to change it.

| variable | default | meaning |
|---|---|---|
| `RAGQA_SERVER__HOST` | `127.0.0.1` | Address to bind. |

- Uploads are limited to 100 MB per request.
"""
INGEST = """Ingest reads text, markdown, HTML, PDF and FAQ files. Re-ingesting an unchanged
file does nothing. A changed file replaces its old version in one atomic step."""
HITS = [
    ScoredChunk(Chunk(id="i", text=INGEST, source="/docs/ingesting.md"), 0.5),
    ScoredChunk(Chunk(id="s", text=GUIDE, source="/docs/deployment.md"), 0.45),
]


def test_passages_split_into_sentences_rows_and_items() -> None:
    assert split_sentences(GUIDE) == [
        "`ragqa serve` starts the chat page and the HTTP API.",
        "The server listens on port 8000 by default; set RAGQA_SERVER__PORT to change it.",
        "RAGQA_SERVER__HOST; 127.0.0.1; Address to bind.",  # the header row names, it says nothing
        "Uploads are limited to 100 MB per request.",
    ]


def test_the_sentence_that_holds_the_answer_comes_with_its_citation() -> None:
    for embedder in (None, FakeEmbedder()):
        extractor = SentenceExtractor(embedder=embedder)
        port = extractor.extract("What port does the server listen on by default?", HITS)
        assert port.startswith("The server listens on port 8000 by default; set RAGQA_SERVER__PORT")
        assert "[2]." in port and "[1]" not in port
        upload = extractor.extract("How large may an upload be?", HITS)
        assert upload == "Uploads are limited to 100 MB per request [2]."
        kinds = extractor.extract("Which kinds of files does ingest read?", HITS)
        assert kinds.startswith("Ingest reads text, markdown, HTML, PDF and FAQ files [1].")


def test_no_passage_text_means_no_answer() -> None:
    empty = [ScoredChunk(Chunk(id="h", text="# Heading only", source="/a.md"), 0.9)]
    assert SentenceExtractor().extract("What is it?", empty) == ""


class Searcher:
    def search(self, question: str, **options: object) -> list[ScoredChunk]:
        return HITS


def test_extractive_mode_answers_without_calling_the_generator() -> None:
    generator = FakeGenerator()
    rag = Rag(searcher=Searcher(), generator=generator,
              extractor=SentenceExtractor(embedder=FakeEmbedder()))  # fmt: skip
    asked = Request("What port does the server listen on by default?", "docs", mode="extractive")
    answer = rag.answer(asked)
    assert generator.prompts == []
    assert (answer.mode, answer.refused) == ("extractive", False)
    assert "port 8000" in answer.text
    assert [c.source for c in answer.citations] == ["/docs/deployment.md"]
    assert answer.citations[0].support == 1.0 and not answer.citations_inferred
    assert "extraction" in answer.timings_ms
    events = list(rag.stream(asked))
    assert [e.kind for e in events] == ["retrieval", "answer"]
    assert events[-1].data.text == answer.text


def test_a_wrapped_list_item_stays_whole_and_example_questions_are_not_answers() -> None:
    text = (
        "- To serve other machines, set the key; every request (the\n"
        "  OpenAI-compatible API too) must then send it.\n"
        '- Ask the chat page questions such as "Which file types can I ingest?" to try it.\n'
    )
    assert split_sentences(text)[0] == (
        "To serve other machines, set the key; every request (the OpenAI-compatible API too) "
        "must then send it."
    )
    hits = [ScoredChunk(Chunk(id="x", text=text + "\n\nIngest reads text and PDF files.\n",
                              source="/a.md"), 0.5)]  # fmt: skip
    assert SentenceExtractor().extract("Which file types can I ingest?", hits) == (
        "Ingest reads text and PDF files [1]."
    )


def test_sentence_vectors_are_embedded_once_while_they_stay_in_the_cache() -> None:
    embedder = FakeEmbedder()
    extractor = SentenceExtractor(embedder=embedder, cache_size=100)
    first = extractor.extract("What port does the server listen on?", HITS)
    assert extractor.extract("What port does the server listen on?", HITS) == first
    assert embedder.calls == [7, 0]  # every sentence the first time, none the second
    small = SentenceExtractor(embedder=embedder, cache_size=2)
    small.extract("What port?", HITS)
    small.extract("What port?", HITS)
    assert embedder.calls[-2:] == [7, 5]  # it kept 2 of the 7: the other 5 are embedded again


def test_only_the_sentences_best_by_words_are_embedded_and_the_answer_is_still_found() -> None:
    embedder = FakeEmbedder()
    extractor = SentenceExtractor(embedder=embedder, dense_limit=2)
    answer = extractor.extract("What port does the server listen on?", HITS)
    assert "port 8000 by default" in answer and "[2]" in answer
    assert embedder.calls == [2]  # of the 7 sentences
    sentences = extractor.sentences(HITS)
    scores = extractor.scores("What port does the server listen on?", sentences, HITS)
    everything = SentenceExtractor(embedder=FakeEmbedder())
    full = everything.scores("What port does the server listen on?", sentences, HITS)
    # The embedded two score as with every sentence embedded; the others by words alone.
    assert sum(a == b for a, b in zip(scores, full, strict=True)) >= 2
    assert sum(a < b for a, b in zip(scores, full, strict=True)) >= 1


def test_a_lead_in_comes_with_its_table_and_a_continuation_with_what_it_continues() -> None:
    text = (
        "Templates are TOML files.\n\nThree templates ship with ragqa:\n\n"
        "| template | for |\n|---|---|\n| `docs` | internal documentation |\n"
        "| `support` | customer support |\n| `extract` | the shortest factual answer |\n\n"
        "See [Asking](asking.md) for more.\n\n    make test\n\nruns the whole test suite.\n"
    )
    hits = [ScoredChunk(Chunk(id="t", text=text, source="/docs/asking.md"), 0.5)]
    extractor = SentenceExtractor(max_sentences=1, max_chars=1000)
    assert extractor.extract("Which templates ship with ragqa?", hits) == (
        "Three templates ship with ragqa: docs; internal documentation | support; customer "
        "support | extract; the shortest factual answer [1]"
    )
    assert "See Asking for more." in split_sentences(text)  # a link reads as its text
    assert extractor.extract("How do I run the whole test suite?", hits) == (
        "make test runs the whole test suite [1]."
    )
    sections = "# Ingesting\n\nNames have 3 characters.\n\n## File types\n\nragqa reads PDF files."
    hits = [ScoredChunk(Chunk(id="s", text=sections, source="/docs/ingesting.md"), 0.5)]
    assert extractor.extract("Which files does ragqa read?", hits) == "ragqa reads PDF files [1]."


def test_the_server_default_mode_answers_a_request_that_names_none() -> None:
    generator = FakeGenerator()
    rag = Rag(searcher=Searcher(), generator=generator, mode="extractive")
    answer = rag.answer(Request("What port does the server listen on by default?", "docs"))
    assert answer.mode == "extractive" and generator.prompts == []
    assert rag.answer(Request("What port?", "docs", mode="closed_book")).mode == "closed_book"


def test_weak_evidence_is_refused_rather_than_quoted() -> None:
    question = "What port does the server listen on by default?"
    sure = SentenceExtractor(embedder=FakeEmbedder(), min_score=0.0)
    assert sure.extract(question, HITS)
    scores = sure.scores(question, sure.sentences(HITS), HITS)
    strict = SentenceExtractor(embedder=FakeEmbedder(), min_score=max(scores) + 0.01)
    assert strict.extract(question, HITS) == ""
    rag = Rag(searcher=Searcher(), generator=FakeGenerator(), extractor=strict)
    answer = rag.answer(Request(question, "docs", mode="extractive"))
    assert answer.refused and answer.refusal_reason == "nothing_extracted"


def test_passages_that_hold_little_of_the_question_are_weak_evidence() -> None:
    extractor = SentenceExtractor(embedder=FakeEmbedder(), weak_coverage=0.5)
    assert not extractor.weak_evidence("What port does the server listen on?", HITS)
    unasked = "Who won the football world cup in Brazil?"  # related to nothing in HITS
    assert extractor.weak_evidence(unasked, HITS)
    # The same words, but a sentence means the question: not weak.
    lenient = SentenceExtractor(embedder=FakeEmbedder(), weak_coverage=0.5, weak_similarity=-1)
    assert not lenient.weak_evidence(unasked, HITS)
    assert not SentenceExtractor(embedder=FakeEmbedder()).weak_evidence(unasked, HITS)  # off
    generator = FakeGenerator()
    rag = Rag(searcher=Searcher(), generator=generator, extractor=extractor)
    for mode in ("rag", "extractive"):
        answer = rag.answer(Request(unasked, "docs", mode=mode))
        assert answer.refused and answer.refusal_reason == "weak_evidence"
        assert answer.citations  # the closest sources are still shown
    assert generator.prompts == []
    kept = rag.answer(Request(unasked, "docs", mode="extractive", strict=False))
    assert not kept.refused


def test_once_the_evidence_holds_the_model_may_not_open_with_the_refusal() -> None:
    asked = "What port does the server listen on by default?"
    refusal = "I could not find the answer in the documents."
    reply = f"{refusal} The server listens on port 8000 by default [1]."

    def ask(policy: str, question: str = asked, **options: Any) -> tuple[Answer, str | None]:
        generator = FakeGenerator(reply)
        checks = SentenceExtractor(embedder=FakeEmbedder(), weak_coverage=0.5)
        rag = Rag(searcher=Searcher(), generator=generator, refusal_policy=policy, extractor=checks)
        answer = rag.answer(Request(question, "docs", **options))
        return answer, (generator.avoided or [None])[0]

    answer, avoided = ask("evidence")
    assert avoided == refusal
    assert not answer.refused
    assert answer.text == "The server listens on port 8000 by default [1]."
    answer, avoided = ask("model")  # the model's own refusal stands
    assert avoided is None and answer.refusal_reason == "model_refused"
    for options in ({"strict": False}, {"mode": "closed_book"}):  # no evidence checked
        assert ask("evidence", **options)[1] is None
    answer, avoided = ask("evidence", "Who won the football world cup in Brazil?")
    assert avoided is None and answer.refusal_reason == "weak_evidence"
    with pytest.raises(ValueError, match="refusal_policy"):
        ask("never")


def test_sentences_context_shows_the_model_the_best_sentences_and_cites_whole_chunks() -> None:
    generator = FakeGenerator("It listens on port 8000 by default [1].")
    rag = Rag(searcher=Searcher(), generator=generator, context="sentences",
              extractor=SentenceExtractor(embedder=FakeEmbedder()))  # fmt: skip
    answer = rag.answer(Request("What port does the server listen on by default?", "docs"))
    prompt = generator.prompts[0][-1]["content"]
    assert "port 8000 by default" in prompt
    assert "Re-ingesting an unchanged" in prompt  # six best sentences of the two passages
    assert "| variable | default | meaning |" not in prompt  # a table header is no sentence
    cited = answer.citations[0]
    assert cited.n == 1 and cited.text in (GUIDE, INGEST)  # the whole chunk, as stored
    assert not answer.refused and answer.text.endswith("[1].")


def test_a_papers_own_reference_markers_are_not_quoted_as_citations() -> None:
    paper = ("The E1-A226V mutation increased infectivity in Ae. albopictus [4, 11, 18] , "
             "a new vector [5] . Write a list as L = [1, 2] and index it as L[0].")  # fmt: skip
    hits = [ScoredChunk(Chunk(id="p", text=paper, source="/p.txt"), 0.9)]
    extractor = SentenceExtractor(embedder=FakeEmbedder(), max_sentences=1)
    answer = extractor.extract("What did the E1-A226V mutation increase?", hits)
    assert answer == ("The E1-A226V mutation increased infectivity in Ae. albopictus, "
                      "a new vector [1].")  # fmt: skip
    code = extractor.extract("How do I write a list and index it?", hits)
    assert "L = [1, 2]" in code and "L[0]" in code


def test_two_sentences_that_would_read_as_a_loop_are_not_joined() -> None:
    first = "It spread from person to person in Wuhan; from person to person it was fast."
    second = "We modelled the routes from reservoir to person and from person to person."
    hits = [ScoredChunk(Chunk(id=str(i), text=t, source=f"/{i}.txt"), 0.9)
            for i, t in enumerate((first, second))]  # fmt: skip
    extractor = SentenceExtractor(embedder=FakeEmbedder(), within=0.0)
    answer = extractor.extract("What was the route from reservoir to person?", hits)
    assert answer.count("[") == 1 and degenerate(answer) is None


def test_a_source_line_that_reads_as_a_loop_is_not_quoted() -> None:
    looped = "The port is 8000 and the port is 8000 and the port is 8000 and so on."
    hits = [ScoredChunk(Chunk(id="b", text=looped, source="/b.txt"), 0.9)]
    assert SentenceExtractor(embedder=FakeEmbedder()).extract("What is the port?", hits) == ""


def test_a_sentence_two_overlapping_chunks_share_is_said_once() -> None:
    shared = "Among 38 cases studied, 21 were linked to two clusters in Germany and France."
    hits = [
        ScoredChunk(Chunk(id="a", text=f"Methods were standard. {shared}", source="/p.txt"), 0.6),
        ScoredChunk(Chunk(id="b", text=f"{shared} The rest were infected.", source="/p.txt"), 0.5),
    ]
    answer = SentenceExtractor(max_sentences=2, within=0.0).extract(
        "Where were the cases that were studied linked to?", hits
    )
    assert answer.count("Among 38 cases studied") == 1


def test_an_entry_of_a_reference_list_is_not_an_answer() -> None:
    references = (
        "Reid AH, Taubenberger JK, Fanning TG. Evidence of an absence: the genetic origins of "
        "the 1918 pandemic influenza virus. Zhao, A. J. et al. Origins of the 1918 pandemic."
    )
    prose = "The 1918 pandemic virus was shown to be an H1N1 influenza virus in the 1930s."
    hits = [
        ScoredChunk(Chunk(id="r", text=references, source="/p.txt"), 0.7),
        ScoredChunk(Chunk(id="p", text=prose, source="/p.txt"), 0.5),
    ]
    answer = SentenceExtractor(max_sentences=1).extract(
        "What were the genetic origins of the 1918 pandemic influenza virus?", hits
    )
    assert answer.startswith("The 1918 pandemic virus was shown") and "[2]" in answer
