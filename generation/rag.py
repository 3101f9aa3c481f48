"""The use case: answer a question in one of the product's modes, with verified citations."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from generation.adapters import virtual_tokens
from generation.citations import answer_support, check_citations
from generation.cleanup import is_refusal, tidy_answer
from generation.context import PackedPrompt, bound_history
from generation.conversation import standalone_question, validate_history
from generation.extractive import SentenceExtractor
from generation.generator import Generator, Message
from generation.injection import leak, neutralize_hits
from generation.prompts import PromptTemplate, TemplateLibrary
from generation.rendering import PromptRenderer, examples_for
from generation.requests import (
    REFUSAL_POLICIES,
    Event,
    InvalidQuestionError,
    Prepared,
    Request,
    Searcher,
    generator_options,
    validate,
)
from generation.types import RETRIEVES, WRITES_FROM_SOURCES, Answer, AnswerMode
from generation.verification import Verifier, degenerate
from retrieval.types import ScoredChunk

__all__ = ["Event", "InvalidQuestionError", "Rag", "Request", "Searcher"]  # one place to import
logger = logging.getLogger(__name__)
MODES = tuple(AnswerMode)
# Small models sometimes carry on with a made-up next turn; stop there.
STOP = ("\nQuestion:", "\nSources:", "\nCustomer:")


class Rag:
    """Answer questions in every mode: closed_book, few_shot, rag (retrieve, pack, generate,
    verify citations, refuse when the documents do not support an answer) and extractive
    (retrieve, then quote the sentences that answer, with no generator call)."""

    def __init__(
        self,
        *,
        searcher: Searcher,
        generator: Generator,
        templates: TemplateLibrary | None = None,
        template: str = "docs",
        collection_templates: Mapping[str, str] | None = None,
        max_question_chars: int = 2000,
        min_score: float = 0.0,
        citation_min_support: float = 0.5,
        answer_min_support: float = 0.4,
        history_max_tokens: int = 1024,
        rewrite_followups: bool = True,
        extractor: SentenceExtractor | None = None,
        verifier: Verifier | None = None,
        mode: str = AnswerMode.RAG,
        context: str = "chunks",
        extractive_top_k: int | None = None,
        default_adapter: Callable[[], str | None] | None = None,
        check_adapter: Callable[[str], object] | None = None,
        refusal_policy: str = "evidence",
    ) -> None:
        if refusal_policy not in REFUSAL_POLICIES:
            raise ValueError(f"refusal_policy must be one of {', '.join(REFUSAL_POLICIES)}, "
                             f"not {refusal_policy!r}")  # fmt: skip
        self._refusal_policy = refusal_policy
        self._mode = mode
        self._default_adapter = default_adapter or (lambda: None)
        self._check_adapter = check_adapter
        # No prompt to fit: extraction reads more passages than the generator could.
        self._extractive_top_k = extractive_top_k
        self._extractor = extractor or SentenceExtractor()
        self.renderer = PromptRenderer(generator=generator, extractor=self._extractor,
                                       context=context)  # fmt: skip
        self._verifier = verifier or Verifier(
            similarity=self._extractor.similarity, min_citation_support=citation_min_support
        )
        self._searcher = searcher
        self._generator = generator
        self._templates = templates or TemplateLibrary()
        self._template = self._templates.get(template).name
        self._collection_templates = {
            c: self._templates.get(t).name for c, t in (collection_templates or {}).items()
        }
        self._max_question_chars = max_question_chars
        self._min_score = min_score
        self._citation_min_support = citation_min_support
        self._answer_min_support = answer_min_support
        self._history_max_tokens = history_max_tokens
        self._rewrite = rewrite_followups

    def answer(self, request: Request) -> Answer:
        """The answer to one request (see `stream` for the same with events)."""
        prepared = self._prepare(request)
        if prepared.early is not None:
            return prepared.early
        begun = time.perf_counter()
        options = generator_options(prepared)
        generation = self._generator.generate(prepared.messages, stop=STOP, **options)
        prepared.timings["generation"] = (time.perf_counter() - begun) * 1000
        return self._finish(prepared, generation.text, generation.completion_tokens)

    def stream(self, request: Request) -> Iterator[Event]:
        """Events as the answer is made: retrieval (with sources), each token, the answer."""
        prepared = self._prepare(request)
        yield Event("retrieval", {
            "mode": prepared.request.mode, "template": prepared.template.name,
            "standalone_question": prepared.standalone,
            "sources": [h.to_dict() | {"n": n} for n, h in enumerate(prepared.hits, start=1)],
            "context": None if prepared.report is None else prepared.report.to_dict(),
        })  # fmt: skip
        if prepared.early is not None:
            yield Event("answer", prepared.early)
            return
        begun = time.perf_counter()
        pieces: list[str] = []
        options = generator_options(prepared)
        for piece in self._generator.stream(prepared.messages, stop=STOP, **options):
            if not pieces:
                prepared.timings["first_token"] = (time.perf_counter() - prepared.started) * 1000
            pieces.append(piece)
            yield Event("token", piece)
        prepared.timings["generation"] = (time.perf_counter() - begun) * 1000
        text = "".join(pieces)
        yield Event("answer", self._finish(prepared, text, self._tokens_in(text)))

    def _tokens_in(self, text: str) -> int:
        """Tokens of a streamed answer (pieces are words or runs of tokens, not tokens): the
        prompt's tokens with the answer as a turn, less those without it."""

        def turn(content: str) -> list[dict[str, str]]:
            return [{"role": "assistant", "content": content}]

        count = self._generator.count_tokens
        return max(0, count(turn(text)) - count(turn(""))) if text else 0

    def template_for(self, collection: str, name: str | None = None) -> PromptTemplate:
        """The template a request uses: its own, else the collection's, else the default."""
        return self._templates.get(
            name or self._collection_templates.get(collection) or self._template
        )

    def _prepare(self, request: Request) -> Prepared:
        question = self._validate(request)
        request.question = question
        template = self.template_for(request.collection, request.template)
        history: Sequence[Message] = validate_history(request.history)
        if request.mode != AnswerMode.EXTRACTIVE:  # it uses no history, and no generator
            history = bound_history(history, self._generator.count_tokens,
                                    self._history_max_tokens)  # fmt: skip
        prepared = Prepared(
            request=request, template=template, started=time.perf_counter(), timings={},
            strict=template.strict if request.strict is None else request.strict,
            standalone=None,
        )  # fmt: skip
        hits: list[ScoredChunk] | None = None
        if request.mode in RETRIEVES:
            query = question
            if history and self._rewrite and request.mode in WRITES_FROM_SOURCES:
                begun = time.perf_counter()
                query = standalone_question(self._generator, history, question)
                prepared.standalone = query
                prepared.timings["rewrite"] = (time.perf_counter() - begun) * 1000
            begun = time.perf_counter()
            options = request.search
            extractive = request.mode == AnswerMode.EXTRACTIVE
            hits = self._searcher.search(
                query, collection=request.collection, mode=options.get("mode"),
                where=options.get("where"), k=self._extractive_top_k if extractive else None,
            )  # fmt: skip
            prepared.timings["retrieval"] = (time.perf_counter() - begun) * 1000
            hits, removed = neutralize_hits(hits)  # documents are data, never instructions
            if removed:
                logger.warning("removed %d instruction(s) planted in the sources of %s",
                               removed, [h.chunk.id for h in hits])  # fmt: skip
            weak = None
            if not hits or max(h.score for h in hits) < self._min_score:
                weak = "low_retrieval_score"
            elif prepared.strict and self._extractor.weak_evidence(query, hits):
                weak = "weak_evidence"
            if weak:
                prepared.hits = hits
                prepared.early = self._refusal(prepared, weak)
                return prepared
            if request.mode == AnswerMode.EXTRACTIVE:
                prepared.hits = hits
                prepared.early = self._extracted(prepared)
                return prepared
            if (prepared.strict and self._extractor.checks_evidence
                    and self._refusal_policy == "evidence"):  # fmt: skip
                prepared.avoid_opening = template.refusal
        examples = examples_for(str(request.mode), template, request.examples)
        reserve = 0
        if request.adapter and self._check_adapter is not None:
            reserve = virtual_tokens(self._check_adapter(request.adapter))
        packed = self.renderer.render(template, question, hits, examples=examples, history=history,
                                      reserve=reserve)  # fmt: skip
        prepared.hits, prepared.messages, prepared.report = (
            packed.hits,
            packed.messages,
            packed.report,
        )
        return prepared

    def prompt(
        self, question: str, hits: Sequence[ScoredChunk] | None, *, collection: str,
        mode: str = AnswerMode.RAG, template: str | None = None,
    ) -> PackedPrompt:  # fmt: skip
        """The prompt this Rag would answer `question` with, given these sources (None: a mode
        without retrieval): what fine-tuning records are rendered with."""
        chosen = self.template_for(collection, template)
        examples = examples_for(mode, chosen)
        if hits is not None:  # training records get no planted instructions either
            hits = neutralize_hits(hits)[0]
        return self.renderer.render(chosen, question, hits, examples=examples)

    def _extracted(self, prepared: Prepared) -> Answer:
        """The extractive answer: the passages' best sentences with their [n]."""
        begun = time.perf_counter()
        text = self._extractor.extract(prepared.request.question, prepared.hits)
        prepared.timings["extraction"] = (time.perf_counter() - begun) * 1000
        if not text:
            return self._refusal(prepared, "nothing_extracted")
        check = check_citations(text, prepared.hits, min_support=self._citation_min_support)
        return self._answer(
            prepared, text, citations=check.citations, support=answer_support(text, prepared.hits),
            unsupported=check.unsupported, invalid=check.invalid,
        )  # fmt: skip

    def _finish(self, prepared: Prepared, raw: str, tokens: int) -> Answer:
        """Tidy the text, verify it and its citations (a failing answer is replaced), refuse if
        strict and unsupported."""
        text = tidy_answer(raw)
        template = prepared.template
        if not text:  # it only began a made-up turn ("Question: ...") or wrote nothing
            return self._refusal(prepared, "no_answer", tokens)
        leaked = leak(text, prepared.messages, allowed=template.refusal)
        if leaked is not None:  # it repeats its own instructions, or carries a key
            logger.warning("refused an answer: %s", leaked)  # (questions are not logged)
            return self._refusal(prepared, leaked, tokens)
        if is_refusal(text, template.refusal):
            return self._refusal(prepared, "model_refused", tokens)
        if prepared.request.mode not in WRITES_FROM_SOURCES:  # no sources to check it against
            problem = degenerate(text)
            if problem is not None:
                return self._replaced(prepared, problem, tokens)
            return self._answer(prepared, text, tokens=tokens)
        return self._verified(prepared, text, tokens)

    def _verified(self, prepared: Prepared, text: str, tokens: int) -> Answer:
        """A rag answer after verification: shown, shown with the [n] it lacked, replaced by
        the extractive answer, or refused."""
        hits = prepared.hits
        verdict = self._verifier.verify(text, hits, prepared.request.question)
        if verdict.problem is not None and verdict.degenerate:
            return self._replaced(prepared, verdict.problem, tokens)
        # Mostly unsupported as a whole: the sources likely lack the answer, so refuse rather
        # than quote them; a single bad claim or name is replaced by the extractive answer.
        supported = answer_support(text, hits)
        if prepared.strict and supported < self._answer_min_support:
            return self._refusal(prepared, "unsupported_answer", tokens, support=supported)
        if verdict.problem is not None and prepared.strict:  # not strict: the model may speak
            return self._replaced(prepared, verdict.problem, tokens)
        if verdict.problem is not None:
            logger.info("showing an unverified answer (not strict): %s", verdict.problem)
        check = verdict.check
        if verdict.text != text:  # the [n] of each sentence's source were added
            text = verdict.text
            problem = degenerate(text)  # a near-repeat with its [n] can read as a loop
            if problem is not None:
                return self._replaced(prepared, problem, tokens)
            check = check_citations(text, hits, min_support=self._citation_min_support)
        return self._answer(
            prepared, text, tokens=tokens, citations=check.citations,
            inferred=verdict.check.inferred, support=supported, unsupported=check.unsupported,
            invalid=check.invalid,
        )  # fmt: skip

    def _replaced(self, prepared: Prepared, problem: str, tokens: int) -> Answer:
        """What is shown instead of a generated answer that failed verification: the
        extractive answer where there are passages, else a refusal."""
        logger.warning("replaced a generated answer: %s", problem)  # (questions are not logged)
        if prepared.request.mode in WRITES_FROM_SOURCES and prepared.hits:
            shown = self._extracted(prepared)
        else:
            shown = self._refusal(prepared, "degenerate_answer", tokens)
        return dataclasses.replace(shown, replaced_reason=problem, completion_tokens=tokens)

    def _refusal(
        self, prepared: Prepared, reason: str, tokens: int = 0, support: float | None = None
    ) -> Answer:
        """The template's refusal, with the closest sources as inferred citations."""
        check = check_citations("", prepared.hits)
        return self._answer(prepared, prepared.template.refusal, tokens=tokens, refused=True,
                            reason=reason, citations=check.citations, inferred=True,
                            support=support)  # fmt: skip

    def _answer(self, prepared: Prepared, text: str, **parts: Any) -> Answer:
        timings = dict(prepared.timings)
        timings["total"] = (time.perf_counter() - prepared.started) * 1000
        return Answer(
            text=text, mode=prepared.request.mode or self._mode,
            refused=parts.get("refused", False),
            citations=parts.get("citations", ()), citations_inferred=parts.get("inferred", False),
            timings_ms=timings, template=prepared.template.name,
            question=prepared.request.question, standalone_question=prepared.standalone,
            refusal_reason=parts.get("reason"), support=parts.get("support"),
            unsupported_citations=parts.get("unsupported", ()),
            invalid_citations=parts.get("invalid", ()), context=prepared.report,
            completion_tokens=parts.get("tokens", 0), adapter=prepared.request.adapter,
        )  # fmt: skip

    def _validate(self, request: Request) -> str:
        return validate(request, default_mode=self._mode, default_adapter=self._default_adapter,
                        max_chars=self._max_question_chars,
                        check_adapter=self._check_adapter)  # fmt: skip
