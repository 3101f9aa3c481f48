"""The use case: answer a question from a collection's documents, with citations."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

from generation.citations import resolve_citations
from generation.generator import Generator
from generation.prompts import DOCS, REFUSAL, PromptTemplate, build_messages
from generation.types import Answer
from retrieval.types import ScoredChunk

MODES = ("rag",)
# Small models sometimes carry on with a made-up next turn; stop there.
STOP = ("\nQuestion:", "\nSources:")


class Searcher(Protocol):
    """What generation needs from retrieval."""

    def search(
        self,
        question: str,
        *,
        collection: str,
        k: int | None = None,
        mode: str | None = None,
        where: Any = None,
    ) -> list[ScoredChunk]:
        """The best chunks for `question`, best first (mode and filter are retrieval's)."""
        ...


class InvalidQuestionError(ValueError):
    """A question that cannot be answered as asked (empty, too long, unknown mode)."""


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


# Where a small model stops answering and starts a made-up turn or copies a source header.
_RUN_ON = re.compile(
    r"\n\s*(?:(?:Question|Sources?|User|Q)\s*:|\[\d+\]\s*\([^)\n]*\)\s*\n)", re.IGNORECASE
)


def tidy_answer(text: str) -> str:
    """Cut what small models add after the answer: a made-up next turn, repeated paragraphs."""
    run_on = _RUN_ON.search(text)
    if run_on:
        text = text[: run_on.start()]
    kept: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        if paragraph.strip() and paragraph.strip() not in {k.strip() for k in kept}:
            kept.append(paragraph)
    return "\n\n".join(kept).strip()


def is_refusal(text: str) -> bool:
    """Whether the model answered with the refusal sentence (or only began to)."""
    said, refusal = _normalise(text), _normalise(REFUSAL)
    # A truncated refusal ("I could not find the") still counts; a bare "I" does not.
    return refusal in said or (len(said) >= 15 and refusal.startswith(said))


class Rag:
    """Retrieve, prompt, generate, cite."""

    def __init__(
        self,
        *,
        searcher: Searcher,
        generator: Generator,
        template: PromptTemplate = DOCS,
        max_question_chars: int = 2000,
        min_score: float = 0.0,
    ) -> None:
        self._searcher = searcher
        self._min_score = min_score
        self._generator = generator
        self._template = template
        self._max_question_chars = max_question_chars

    def answer(
        self,
        question: str,
        *,
        collection: str,
        mode: str = "rag",
        search: Mapping[str, Any] | None = None,
    ) -> Answer:
        """Answer `question` from `collection`; every citation is a chunk the model was given.

        `search` passes options to retrieval (mode, where). When no chunk scores at least
        `min_score`, the answer is the refusal, with the closest sources, and no generation.
        """
        question = self._validate(question, mode)
        started = time.perf_counter()
        options = dict(search or {})
        hits = self._searcher.search(
            question, collection=collection, mode=options.get("mode"), where=options.get("where")
        )
        retrieved = time.perf_counter()
        if not hits or max(h.score for h in hits) < self._min_score:
            citations, _ = resolve_citations("", hits)
            return Answer(
                text=REFUSAL, mode=mode, refused=True, citations=citations,
                citations_inferred=True,
                timings_ms={"retrieval": (retrieved - started) * 1000, "generation": 0.0,
                            "total": (retrieved - started) * 1000},
            )  # fmt: skip
        generation = self._generator.generate(
            build_messages(self._template, question, hits), stop=STOP
        )
        generated = time.perf_counter()
        text = tidy_answer(generation.text)
        refused = is_refusal(text)
        citations, inferred = resolve_citations(text, hits)
        return Answer(
            text=REFUSAL if refused else text,
            mode=mode,
            refused=refused,
            citations=citations,
            citations_inferred=inferred,
            timings_ms={
                "retrieval": (retrieved - started) * 1000,
                "generation": (generated - retrieved) * 1000,
                "total": (generated - started) * 1000,
            },
        )

    def _validate(self, question: str, mode: str) -> str:
        if mode not in MODES:
            raise InvalidQuestionError(f"Unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
        question = question.strip()
        if not question:
            raise InvalidQuestionError("The question is empty; ask something about your documents.")
        if len(question) > self._max_question_chars:
            raise InvalidQuestionError(
                f"The question is {len(question)} characters long; the limit is "
                f"{self._max_question_chars}. Shorten it."
            )
        return question
