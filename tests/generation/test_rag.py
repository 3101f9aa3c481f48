"""The Rag use case with fakes for search and generation: modes, budget, checks, refusals."""

from __future__ import annotations

import pytest

from generation.cleanup import is_refusal, tidy_answer
from generation.prompts import Example, TemplateLibrary
from generation.rag import InvalidQuestionError, Rag, Request
from retrieval.types import Chunk, ScoredChunk
from tests.fakes import FakeGenerator

DOCS = TemplateLibrary().get("docs")


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
    ScoredChunk(Chunk(id="a", text="Ragqa serves answers from documents.", source="/docs/a.md"),
                0.9),
    ScoredChunk(Chunk(id="b", text="Use make run to start the server.", source="/docs/b.md"), 0.7),
]  # fmt: skip


def rag(*replies: str, hits: list[ScoredChunk] | None = None, **kwargs: object) -> Rag:
    generator = kwargs.pop("generator", None) or FakeGenerator(*replies)
    return Rag(searcher=FakeSearcher(HITS if hits is None else hits), generator=generator,  # type: ignore[arg-type]
               **kwargs)  # type: ignore[arg-type]  # fmt: skip


def test_answer_cites_the_chunks_the_model_was_given() -> None:
    generator = FakeGenerator("Use make run to start the server [2].")
    searcher = FakeSearcher(HITS)
    answer = Rag(searcher=searcher, generator=generator).answer(Request(" How? ", "docs"))
    assert searcher.questions == [("How?", "docs")]
    assert answer.text == "Use make run to start the server [2]."
    assert (answer.mode, answer.template, answer.refused) == ("rag", "docs", False)
    assert [c.chunk_id for c in answer.citations] == ["b"]
    assert answer.citations[0].support == 1.0 and answer.unsupported_citations == ()
    assert "Use make run to start the server." in generator.prompts[0][-1]["content"]
    assert {"retrieval", "generation", "total"} <= set(answer.timings_ms)
    data = answer.to_dict()
    assert set(data) >= {"answer", "mode", "template", "refused", "citations", "context",
                         "unsupported_citations", "timings_ms"}  # fmt: skip
    assert set(data["citations"][0]) >= {"n", "source", "page", "chunk_id", "text", "support"}  # type: ignore[index]


@pytest.mark.parametrize("mode", ["rag", "closed_book"])
@pytest.mark.parametrize("strict", [True, False])
def test_an_answer_that_is_only_a_made_up_turn_is_refused(mode: str, strict: bool) -> None:
    answer = rag("\nQuestion:").answer(Request("q?", "c", mode=mode, strict=strict))
    assert answer.refused and answer.refusal_reason == "no_answer"
    assert answer.text == DOCS.refusal


def test_citations_that_do_not_support_their_sentence_are_flagged() -> None:
    answer = rag("Ragqa serves answers from documents [2].").answer(Request("q?", "c"))
    assert not answer.refused
    assert answer.unsupported_citations == (2,)


@pytest.mark.parametrize("reply", ["I could not find the answer in the documents, sorry.",
                                   "I could not find the answer"])  # fmt: skip
def test_refusal_is_detected_and_normalised(reply: str) -> None:
    answer = rag(reply).answer(Request("q?", "c"))
    assert answer.refused and answer.refusal_reason == "model_refused"
    assert answer.text == DOCS.refusal
    assert answer.citations and answer.citations_inferred  # the closest sources are still shown


def test_low_retrieval_scores_refuse_without_generating() -> None:
    generator = FakeGenerator()
    weak = [ScoredChunk(h.chunk, 0.1) for h in HITS]
    answer = rag(hits=weak, generator=generator, min_score=0.2).answer(Request("q?", "c"))
    assert answer.refused and answer.refusal_reason == "low_retrieval_score"
    assert generator.prompts == []


def test_strict_templates_refuse_answers_the_sources_do_not_support() -> None:
    made_up = "Bananas grow on tall plants in warm countries [1]."
    strict = rag(made_up).answer(Request("q?", "c"))
    assert strict.refused and strict.refusal_reason == "unsupported_answer"
    assert strict.support is not None and strict.support < 0.5
    relaxed = rag(made_up).answer(Request("q?", "c", strict=False))
    assert not relaxed.refused and relaxed.text == made_up
    extract = rag(made_up).answer(Request("q?", "c", template="extract"))
    assert not extract.refused  # extract is not strict


def test_closed_book_and_few_shot_do_not_retrieve() -> None:
    searcher, generator = FakeSearcher(HITS), FakeGenerator("Paris.", "Paris too.")
    service = Rag(searcher=searcher, generator=generator)
    closed = service.answer(Request("Capital of France?", "c", mode="closed_book"))
    few = service.answer(Request("Capital of France?", "c", mode="few_shot"))
    assert searcher.questions == []
    assert (closed.mode, closed.text, closed.citations) == ("closed_book", "Paris.", ())
    assert few.mode == "few_shot" and few.text == "Paris too."
    assert len(generator.prompts[0]) == 2  # system + question
    examples = len(DOCS.examples)
    assert len(generator.prompts[1]) == 2 + 2 * examples  # plus one exchange per example
    assert "<sources>" not in str(generator.prompts[0]) + str(generator.prompts[1])


def test_request_examples_replace_the_templates_and_show_in_rag() -> None:
    generator = FakeGenerator()
    mine = [Example("Where is X?", "In Y [1].", "X is in Y.")]
    rag(generator=generator).answer(Request("q?", "c", examples=mine))
    assert generator.prompts[0][2] == {"role": "assistant", "content": "In Y [1]."}


def test_sources_are_packed_best_first_into_the_window_and_drops_reported() -> None:
    long = ScoredChunk(Chunk(id="long", text="word " * 300, source="/docs/long.md"), 0.8)
    hits = [HITS[0], long, HITS[1]]
    generator = FakeGenerator("Ragqa serves answers from documents [1].", window=300,
                              max_new_tokens=64)  # fmt: skip
    answer = rag(hits=hits, generator=generator).answer(Request("q?", "c"))
    assert answer.context is not None
    assert answer.context.used == 2
    assert [d.chunk_id for d in answer.context.dropped] == ["long"]
    assert answer.context.prompt_tokens + 64 <= 300
    assert "word word" not in generator.prompts[0][-1]["content"]
    assert "[2] (b.md)" in generator.prompts[0][-1]["content"]  # renumbered after the drop


def test_follow_ups_are_rewritten_before_retrieval() -> None:
    generator = FakeGenerator("How do I start the ragqa server?", "Use make run [2].")
    searcher = FakeSearcher(HITS)
    history = [{"role": "user", "content": "What is ragqa?"},
               {"role": "assistant", "content": "A server [1]."}]  # fmt: skip
    answer = Rag(searcher=searcher, generator=generator).answer(
        Request("How do I start it?", "c", history=history)
    )
    assert searcher.questions == [("How do I start the ragqa server?", "c")]
    assert answer.standalone_question == "How do I start the ragqa server?"
    assert answer.question == "How do I start it?"
    assert "Question: How do I start it?" in generator.prompts[1][-1]["content"]
    assert generator.prompts[1][1:3] == history  # the conversation is in the prompt


def test_stream_yields_retrieval_tokens_then_the_same_answer() -> None:
    reply = "Use make run to start the server [2]."
    events = list(rag(reply).stream(Request("How?", "c")))
    kinds = [e.kind for e in events]
    assert kinds[0] == "retrieval" and kinds[-1] == "answer"
    assert set(kinds[1:-1]) == {"token"} and len(kinds) > 4
    assert "".join(e.data for e in events[1:-1]) == reply
    assert [(s["n"], s["chunk_id"]) for s in events[0].data["sources"]] == [(1, "a"), (2, "b")]
    final = events[-1].data
    assert final.text == reply and [c.n for c in final.citations] == [2]
    assert "first_token" in final.timings_ms


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        (DOCS.refusal, True),
        ("I could not find the answer", True),
        ("I", False),
        ("Ragqa answers questions [1].", False),
        ("", False),
    ],
)
def test_is_refusal(text: str, refused: bool) -> None:
    assert is_refusal(text, DOCS.refusal) is refused


@pytest.mark.parametrize(
    ("question", "mode", "message"),
    [
        ("", "rag", "empty"),
        ("   ", "rag", "empty"),
        ("x" * 2001, "rag", "limit is 2000"),
        ("q", "telepathy", "Unknown mode"),
        ("q", "finetuned", "needs a fine-tuned adapter"),
    ],
)
def test_bad_questions_are_refused_before_any_work(question: str, mode: str, message: str) -> None:
    searcher, generator = FakeSearcher(HITS), FakeGenerator()
    with pytest.raises(InvalidQuestionError, match=message):
        Rag(searcher=searcher, generator=generator).answer(Request(question, "c", mode=mode))
    assert searcher.questions == [] and generator.prompts == []


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("Set the port [1].\n\nQuestion: How else?\n\nAnswer: ...", "Set the port [1]."),
        ("Paris.\n\nThe answer is:\n\nParis.\n\nThe answer is:", "Paris.\n\nThe answer is:"),
        ("One line.\nSecond line [2].", "One line.\nSecond line [2]."),
        ("Debian is free [1].\n\n[2] (faq.txt)\nCopied source text", "Debian is free [1]."),
        ("[1] (faq.txt) says so.", "[1] (faq.txt) says so."),
        ("41 cases were confirmed.\n</sources>", "41 cases were confirmed."),
        ("Question:", ""),
        ("Sources: the FAQ says so [1].", "Sources: the FAQ says so [1]."),
        ("  \n\n", ""),
    ],
)
def test_tidy_answer_cuts_run_on_turns_and_repeats(raw: str, tidy: str) -> None:
    assert tidy_answer(raw) == tidy


def test_answer_is_tidied_before_citations_are_read() -> None:
    reply = "Use make run to start the server [2].\n\nQuestion: more?\nAnswer: see [1]."
    answer = rag(reply).answer(Request("q?", "c"))
    assert answer.text == "Use make run to start the server [2]."
    assert [c.n for c in answer.citations] == [2]


class CharacterStreamer(FakeGenerator):
    """Streams one character at a time, as a tokenizer that splits words would."""

    def stream(self, messages, **options):  # type: ignore[no-untyped-def]
        yield from self.generate(messages, **options).text


def test_a_streamed_answer_counts_tokens_not_pieces() -> None:
    reply = "Use make run to start the server [2]."
    asked = Request("How do I start it?", "docs")
    answered = rag(generator=CharacterStreamer(reply)).answer(asked)
    streamed = [e for e in rag(generator=CharacterStreamer(reply)).stream(asked)]
    assert len([e for e in streamed if e.kind == "token"]) == len(reply)  # one per character
    final = streamed[-1].data
    assert final.text == answered.text
    assert final.completion_tokens == answered.completion_tokens == len(reply.split())
