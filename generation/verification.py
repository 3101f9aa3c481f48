"""Checks a generated answer must pass before it is shown: that it says something (not a loop,
a lead-in with nothing after it, or the prompt's scaffolding), cites only passages it was
given, names no identifier or number the passages lack, and that each of its sentences is
supported by them, in their words or in meaning. A failing answer is replaced (see Rag)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from generation.citations import (
    CitationCheck,
    check_citations,
    cited_sentences,
    content_words,
    support,
)
from retrieval.types import ScoredChunk

_WORD = re.compile(r"\w+")
# The same few characters over and over: "key_key_key_key_key_", "[4] [4] [4] [4] [4]".
_STUTTER = re.compile(r"(.{2,20}?)\1{4,}", re.DOTALL)
# Pieces of the prompt a model copies instead of answering.
_SCAFFOLDING = re.compile(
    r"</?sources>|<\|im_(?:start|end)\|>|^\s*(?:question|context|sources|instruction)\s*:",
    re.IGNORECASE | re.MULTILINE,
)


def degenerate(text: str) -> str | None:
    """Why `text` is no answer at all, or None when it is one."""
    if not content_words(text):
        return "no content words"
    words = _WORD.findall(text.lower())
    grams = Counter(zip(words, words[1:], words[2:], words[3:], strict=False))
    stutters = any(_WORD.search(m.group(1)) for m in _STUTTER.finditer(text))
    if (grams and max(grams.values()) >= 3) or stutters:
        return "a repetition loop"
    if len(words) >= 24 and len(set(words)) < 0.3 * len(words):
        return "a repetition loop"
    if text.rstrip().endswith(":") and len(words) <= 12:
        return "a lead-in with nothing after it"
    if _SCAFFOLDING.search(text):
        return "the prompt's scaffolding echoed back"
    return None


def verify(text: str, invalid_citations: Sequence[int]) -> str | None:
    """Why a generated answer must not be shown, or None when it may."""
    problem = degenerate(text)
    if problem is None and invalid_citations:
        cited = ", ".join(f"[{n}]" for n in invalid_citations)
        problem = f"it cites passages it was not given ({cited})"
    return problem


# Names and numbers a reader would act on: `code`, snake_case, camelCase, --flags, paths,
# dotted names, numbers. A small model invents them ("deleteDocument", "port 8080").
_IDENTIFIER = re.compile(
    r"`([^`\n]{2,60})`"
    r"|(?<![\w-])(--?[a-z][\w-]+)"
    r"|\b([A-Za-z_][\w]*_[\w]*|[a-z]+[A-Z]\w*|\w+(?:[./:]\w+)+|\d[\d,]*(?:\.\d+)?)\b"
)


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace(",", ""))


def fabricated(text: str, evidence: str) -> list[str]:
    """The identifiers and numbers of `text` that `evidence` (the sources and the question)
    never mentions, in order; [n] markers are not numbers."""
    known = _plain(evidence)
    found: list[str] = []
    for match in _IDENTIFIER.finditer(re.sub(r"\[\d+(?:\s*,\s*\d+)*\]", " ", text)):
        name = next(g for g in match.groups() if g).strip()
        if _plain(name) not in known and name not in found:
            found.append(name)
    return found


def unsupported_claims(
    claims: Sequence[str], lexical: Sequence[float], semantic: Sequence[float], *,
    min_lexical: float, min_semantic: float,
) -> list[int]:  # fmt: skip
    """The claims (answer sentences, by index) that neither share enough content words with
    the sources (`lexical`) nor mean nearly the same as one of their sentences (`semantic`,
    the best cosine); a claim of fewer than three content words asserts too little to judge."""
    return [
        i
        for i, (claim, words, meaning) in enumerate(zip(claims, lexical, semantic, strict=True))
        if len(content_words(claim)) >= 3 and words < min_lexical and meaning < min_semantic
    ]


Similarity = Callable[[Sequence[str], Sequence[ScoredChunk]], list[float]]


@dataclass(frozen=True)
class Verdict:
    """What verification found: the problem (None: may be shown), the text to show (with [n]
    added where the model cited nothing but each sentence has its source), its citations."""

    problem: str | None
    text: str
    check: CitationCheck
    degenerate: bool = False  # no answer at all, or citing passages not given


class Verifier:
    """Verifies a rag answer against the passages it was given (see the module docstring).

    `similarity` gives each claim's best cosine to a passage sentence (the extractor's); without
    it only word overlap counts. `require_citations`: an answer that cites nothing fails unless
    every sentence has a passage that supports it, whose [n] is then added (inferred).
    """

    def __init__(
        self, *, similarity: Similarity | None = None, min_citation_support: float = 0.5,
        min_lexical: float = 0.5, min_semantic: float = 0.6, require_citations: bool = True,
    ) -> None:  # fmt: skip
        self._similarity = similarity
        self._min_citation = min_citation_support
        self._min_lexical = min_lexical
        self._min_semantic = min_semantic
        self._require_citations = require_citations

    def verify(self, text: str, hits: Sequence[ScoredChunk], question: str = "") -> Verdict:
        """The verdict on a generated answer to `question` from `hits`."""
        check = check_citations(text, hits, min_support=self._min_citation)
        problem = verify(text, check.invalid)
        if problem is not None:
            return Verdict(problem, text, check, degenerate=True)
        if problem is None:
            evidence = "\n".join([question, *(h.chunk.text for h in hits)])
            names = fabricated(text, evidence)
            if names:
                problem = f"it names what no source contains ({', '.join(names[:3])})"
        claims = [(s, ns) for s, ns in cited_sentences(text) if content_words(s)]
        if problem is None and claims:
            problem = self._unsupported(claims, hits)
        if problem is None and check.inferred and self._require_citations:
            return self._cite(text, claims, hits, check)
        return Verdict(problem, text, check)

    def _unsupported(
        self, claims: Sequence[tuple[str, list[int]]], hits: Sequence[ScoredChunk]
    ) -> str | None:
        """A problem when a claim is supported neither by the passages in words, nor by any
        passage sentence in meaning."""
        # A claim citing the wrong passage is still supported (its citation is flagged
        # unsupported instead): the claim is checked against everything it was given.
        everything = "\n".join(h.chunk.text for h in hits)
        lexical = [support(s, everything) for s, _ in claims]
        texts = [s for s, _ in claims]
        semantic = self._similarity(texts, hits) if self._similarity else [0.0] * len(texts)
        failing = unsupported_claims(texts, lexical, semantic, min_lexical=self._min_lexical,
                                     min_semantic=self._min_semantic)  # fmt: skip
        if not failing:
            return None
        return f"the sources do not support {_quote(texts[failing[0]])}"

    def _cite(self, text: str, claims: Sequence[tuple[str, list[int]]],
              hits: Sequence[ScoredChunk], check: CitationCheck) -> Verdict:  # fmt: skip
        """Add the [n] of each sentence's best supporting passage, or fail when one has none."""
        cited = text
        for sentence, _ in claims:
            best, n = max((support(sentence, h.chunk.text), -i) for i, h in enumerate(hits, 1))
            if best < self._min_citation:
                return Verdict("it cites no passage, and no passage supports "
                               f"{_quote(sentence)}", text, check)  # fmt: skip
            stripped = sentence.rstrip()
            end = stripped[-1] if stripped[-1] in ".!?" else ""
            marked = f"{stripped[: len(stripped) - len(end)]} [{-n}]{end}"
            cited = cited.replace(stripped, marked, 1)
        return Verdict(None, cited, check)


def _quote(sentence: str, limit: int = 80) -> str:
    sentence = " ".join(sentence.split())
    return repr(sentence if len(sentence) <= limit else sentence[: limit - 3] + "...")
