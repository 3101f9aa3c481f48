"""The prompt a question is answered with, from the template, the sources and the examples: one
renderer for inference and for fine-tuning records, so a model is trained on exactly the
prompts it will be asked with."""

from __future__ import annotations

from collections.abc import Sequence

from generation.context import PackedPrompt, pack_prompt
from generation.extractive import SentenceExtractor
from generation.generator import Generator, Message
from generation.prompts import Example, PromptTemplate
from generation.types import WRITES_FROM_SOURCES, AnswerMode
from retrieval.types import ScoredChunk


class PromptRenderer:
    """Renders prompts that fit the generator's window; with `context="sentences"` the sources
    are cut to the sentences that best match the question (as `extractor.select` picks)."""

    def __init__(
        self, *, generator: Generator, extractor: SentenceExtractor, context: str = "chunks"
    ) -> None:
        if context not in ("chunks", "sentences"):
            raise ValueError(f"context must be 'chunks' or 'sentences', not {context!r}")
        self._generator = generator
        self._extractor = extractor
        self.context = context

    def render(
        self,
        template: PromptTemplate,
        question: str,
        hits: Sequence[ScoredChunk] | None,
        *,
        examples: Sequence[Example] = (),
        history: Sequence[Message] = (),
        reserve: int = 0,
    ) -> PackedPrompt:
        """The messages, and the sources in them numbered from 1 as whole chunks (citations
        show, and are checked against, the whole chunk); `hits` None: no sources. `reserve`:
        window tokens taken by something else (an adapter's soft prompt)."""
        shown = hits
        if hits and self.context == "sentences":
            shown = self._extractor.select(question, hits)
        generator = self._generator
        packed = pack_prompt(
            template, question, shown, count_tokens=generator.count_tokens,
            window=generator.context_window - reserve, answer_budget=generator.max_new_tokens,
            examples=examples, history=history,
        )  # fmt: skip
        whole = {h.chunk.id: h for h in hits or ()}
        return PackedPrompt(
            messages=packed.messages,
            hits=[whole.get(h.chunk.id, h) for h in packed.hits],
            report=packed.report,
        )


def examples_for(
    mode: str, template: PromptTemplate, given: Sequence[Example] | None = None
) -> Sequence[Example]:
    """The worked examples a prompt shows: few_shot always; rag when the template asks for them
    or the request brings its own; no other mode."""
    chosen = template.examples if given is None else given
    if mode == AnswerMode.FEW_SHOT or (
        mode in WRITES_FROM_SOURCES and (template.rag_examples or given is not None)
    ):
        return chosen
    return ()
