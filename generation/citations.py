"""Find the [n] markers in an answer, map them to the sources the model was given, and check
that each cited source supports the sentence that cites it (token overlap)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from generation.types import Citation
from retrieval.types import ScoredChunk

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# Function words carry no evidence: a sentence is supported by its content words.
_STOP_WORDS = (
    "a an and are as at be been but by can could did do does for from had has have how i if in "
    "into is it its may might more most must no not of on or our should so such than that the "
    "their them then there these they this those to was we were what when where which while who "
    "why will with would you your also about after before both each only other same some very "
    "answer source sources according yes"
)
_STOP = frozenset(_STOP_WORDS.split())


def parse_citations(text: str) -> list[int]:
    """The source numbers cited in `text`, in order of first mention, without repeats."""
    seen: list[int] = []
    for match in _MARKER.finditer(text):
        for number in match.group(1).split(","):
            n = int(number)
            if n not in seen:
                seen.append(n)
    return seen


def content_words(text: str) -> set[str]:
    """The words of `text` that carry meaning, lower-cased, with a crude plural fold."""
    words = set()
    for word in _WORD.findall(_MARKER.sub(" ", text).lower()):
        if word in _STOP or (len(word) < 2 and not word.isdigit()):
            continue
        words.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return words


def support(claim: str, evidence: str) -> float:
    """The share of the claim's content words found in the evidence (1.0 if it has none)."""
    claimed = content_words(claim)
    if not claimed:
        return 1.0
    return len(claimed & content_words(evidence)) / len(claimed)


def best_span(claim: str, passage: str) -> tuple[int, int] | None:
    """Character offsets of the sentence (or line) of `passage` that shares the most content
    words with `claim`, so a reader sees which words back it; None when none shares any."""
    best: tuple[int, int, int] | None = None  # (shared words, start, end)
    claimed = content_words(claim)
    start = 0
    for end_match in [*_SENTENCE_END.finditer(passage), None]:
        end = end_match.start() if end_match else len(passage)
        shared = len(claimed & content_words(passage[start:end]))
        if shared and (best is None or shared > best[0]):
            best = (shared, start, end)
        start = end_match.end() if end_match else end
    return None if best is None else (best[1], best[2])


def cited_sentences(text: str) -> list[tuple[str, list[int]]]:
    """Each sentence of `text` with the source numbers it cites.

    Markers that open a sentence ("Fact. [1] Next.") belong to the sentence before them.
    """
    pieces = [p for p in _SENTENCE_END.split(text) if p.strip()]
    result: list[tuple[str, list[int]]] = []
    for piece in pieces:
        sentence = piece
        leading = re.match(r"^\s*((?:\[\d+(?:\s*,\s*\d+)*\]\s*)+)", piece)
        if leading and result:
            result[-1][1].extend(parse_citations(leading.group(1)))
            sentence = piece[leading.end() :]
        if sentence.strip():
            result.append((sentence, parse_citations(sentence)))
    return result


@dataclass(frozen=True)
class CitationCheck:
    """The citations of an answer and what was wrong with them."""

    citations: tuple[Citation, ...]
    inferred: bool  # the model cited nothing; these are the sources that best support it
    unsupported: tuple[int, ...]  # cited sources that do not support their sentence
    invalid: tuple[int, ...]  # numbers that name no source the model was given


def _citation(n: int, hit: ScoredChunk, score: float | None, claim: str = "") -> Citation:
    chunk = hit.chunk
    return Citation(n=n, source=chunk.source, page=chunk.page, chunk_id=chunk.id,
                    text=chunk.text, score=hit.score, support=score, start=chunk.start,
                    location=chunk.location, highlight=best_span(claim, chunk.text))  # fmt: skip


def check_citations(
    text: str, hits: Sequence[ScoredChunk], *, min_support: float = 0.5, fallback: int = 3
) -> CitationCheck:
    """Citations for an answer, each verified against the sentences that cite it.

    A citation's support is its best over the sentences citing it; below `min_support` it is
    flagged unsupported. Markers outside the given sources are dropped and reported. If the
    answer cites nothing, the sources that best support its sentences are attached, flagged
    as inferred.
    """
    best: dict[int, float] = {}
    claim: dict[int, str] = {}  # the sentence each citation supports best, to highlight
    invalid: list[int] = []
    for sentence, numbers in cited_sentences(text):
        for n in numbers:
            if not 1 <= n <= len(hits):
                invalid += [] if n in invalid else [n]
                continue
            score = support(sentence, hits[n - 1].chunk.text)
            if n not in best or score > best[n]:
                best[n], claim[n] = score, sentence
    if best:
        order = [n for n in parse_citations(text) if n in best]
        return CitationCheck(
            citations=tuple(_citation(n, hits[n - 1], best[n], claim[n]) for n in order),
            inferred=False,
            unsupported=tuple(n for n in order if best[n] < min_support),
            invalid=tuple(invalid),
        )
    return CitationCheck(
        citations=_inferred(text, hits, min_support=min_support, fallback=fallback),
        inferred=True,
        unsupported=(),
        invalid=tuple(invalid),
    )


def _best_source(claim: str, hits: Sequence[ScoredChunk]) -> tuple[float, int]:
    """(support, n) of the source that supports `claim` best; ties go to the better-ranked."""
    scored = [(support(claim, h.chunk.text), n) for n, h in enumerate(hits, start=1)]
    return max(scored, key=lambda s: (s[0], -s[1]))


def _inferred(
    text: str, hits: Sequence[ScoredChunk], *, min_support: float, fallback: int
) -> tuple[Citation, ...]:
    """Sources for an answer that cites none: for each sentence, the source that supports it
    best, if it reaches `min_support`; else the one source that best supports the whole
    answer. An empty answer (a refusal) gets the first `fallback` sources as retrieved."""
    if not text.strip():
        return tuple(_citation(n, h, None) for n, h in enumerate(hits[:fallback], start=1))
    if not hits:
        return ()
    chosen: dict[int, tuple[float, str]] = {}
    for sentence, _ in cited_sentences(text):
        if content_words(sentence):
            score, n = _best_source(sentence, hits)
            if score >= min_support and score > chosen.get(n, (-1.0, ""))[0]:
                chosen[n] = (score, sentence)
    if not chosen:
        score, n = _best_source(text, hits)
        chosen[n] = (score, text)
    return tuple(_citation(n, hits[n - 1], score, claim) for n, (score, claim) in chosen.items())


def answer_support(text: str, hits: Sequence[ScoredChunk]) -> float:
    """The share of the answer's content words found anywhere in the sources it was given."""
    return support(text, "\n".join(h.chunk.text for h in hits))
