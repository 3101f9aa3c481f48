"""Extractive answers: the sentences of the retrieved passages that best answer the question,
each followed by the [n] of its passage. No generator call, so an answer takes milliseconds
and every word of it is in a source."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Protocol

from generation.citations import content_words
from generation.cleanup import without_references
from generation.sentences import Sentence, split_sentences, split_units
from generation.verification import degenerate
from retrieval.types import ScoredChunk

__all__ = ["Sentence", "SentenceExtractor", "split_sentences"]

_WANTS_NUMBER = re.compile(
    r"^\s*(?:how (?:many|much|long|large|big|old|often|far|high|low)|in what year|when)\b"
    r"|\b(?:what|which) (?:is|are|was|were) the (?:default|number|size|percentage|proportion"
    r"|rate|ratio|limit|port|year|age|duration|dose)\b"
    r"|\b(?:what|which) (?:percentage|proportion|number|year|port|status code)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")
_MARKER = re.compile(r"\s*\[\d+\]")
# A sentence that opens with one of these leans on the one before it.
_CONTINUES = re.compile(
    r"^(?:it|this|that|these|those|they|then|so|otherwise|however|for example|e\.g\.|also)\b",
    re.IGNORECASE,
)

# The authors of a reference-list entry ("Reid AH, Taubenberger JK, ...", "Zhao, A. J.", "J. et
# al."): they and the title after them name a paper and say nothing about the question.
_REFERENCE_AUTHORS = re.compile(
    r"^(?:[A-Z][\w'-]+ [A-Z]{1,3}, ){2}"  # Reid AH, Taubenberger JK,
    r"|^[A-Z][\w'-]+, (?:[A-Z]\. ?){1,3}"  # Zhao, A. J.
    r"|^(?:[A-Z]\. ?){1,3}et al\."  # J. et al.
)


class SentenceEmbedder(Protocol):
    """What extraction needs from an embedder (retrieval's Embedder has it)."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """The unit vector of a question."""
        ...


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _stems(text: str) -> Counter[str]:
    """Content words with -ing and -ed cut, so 'ingesting' meets 'ingest'."""
    return Counter(re.sub(r"(?<=\w{4})(?:ing|ed)$", "", w) for w in content_words(text))


def _keyword_scores(question: str, sentences: Sequence[Sentence]) -> list[float]:
    """BM25 of each sentence for the question's content words, over these sentences."""
    words = [_stems(s.scored_text) for s in sentences]
    asked = set(_stems(question))
    if not asked or not sentences:
        return [0.0] * len(sentences)
    average = sum(sum(w.values()) for w in words) / len(words) or 1.0
    having = Counter(word for w in words for word in w.keys() & asked)
    idf = {w: math.log(1 + (len(words) - n + 0.5) / (n + 0.5)) for w, n in having.items()}
    scores = []
    for counts in words:
        norm = 1.2 * (0.25 + 0.75 * sum(counts.values()) / average)
        scores.append(sum(idf[w] * counts[w] * 2.2 / (counts[w] + norm) for w in idf if counts[w]))
    return scores


class SentenceExtractor:
    """Picks the passage sentences that answer a question: cosine to the question (with an
    embedder), BM25 within the passages, and the passage's own retrieval score, combined."""

    def __init__(
        self,
        *,
        embedder: SentenceEmbedder | None = None,
        max_sentences: int = 2,
        max_chars: int = 500,
        dense_weight: float = 0.5,
        keyword_weight: float = 0.35,
        passage_weight: float = 0.15,
        cache_size: int = 8192,
        min_score: float = 0.0,
        number_bonus: float = 0.1,
        within: float = 0.8,
        weak_coverage: float = 0.0,
        weak_similarity: float = 0.7,
        dense_limit: int | None = None,
    ) -> None:
        self._embedder = embedder
        # Sentence vectors by text, least recently used out: popular passages come back often.
        self._vectors: OrderedDict[str, list[float]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._min_score = min_score
        self._number_bonus = number_bonus
        self._within = within  # a further sentence must score this share of the best
        self._max_sentences = max_sentences
        self._weak = (weak_coverage, weak_similarity)
        self._max_chars = max_chars
        self._weights = (dense_weight, keyword_weight, passage_weight)
        # Only this many sentences, the best by words and passage, are embedded: embedding
        # every sentence of long passages is most of an answer's time.
        self._dense_limit = dense_limit

    def sentences(self, hits: Sequence[ScoredChunk]) -> list[Sentence]:
        """Every sentence of the passages, numbered by passage."""
        return [
            Sentence(text, n, position, item, topic)
            for n, hit in enumerate(hits, start=1)
            for position, (text, item, topic) in enumerate(split_units(hit.chunk.text))
        ]

    def scores(self, question: str, sentences: Sequence[Sentence],
               hits: Sequence[ScoredChunk]) -> list[float]:  # fmt: skip
        """How well each sentence answers the question (higher is better)."""
        keyword = _keyword_scores(question, sentences)
        best = max(keyword, default=0.0) or 1.0
        w_dense, w_keyword, w_passage = self._weights
        # A question after a quantity is answered by a sentence with a number in it.
        bonus = self._number_bonus if _WANTS_NUMBER.search(question) else 0.0
        lexical = [
            w_keyword * k / best
            + w_passage * hits[s.n - 1].score
            + (bonus if _NUMBER.search(s.text) else 0.0)
            for s, k in zip(sentences, keyword, strict=True)
        ]
        dense = [0.0] * len(sentences)
        if self._embedder is not None and sentences:
            chosen = sorted(range(len(sentences)), key=lambda i: -lexical[i])
            chosen = sorted(chosen[: self._dense_limit or len(chosen)])
            asked = self._embedder.embed_query(question)
            vectors = self._sentence_vectors(
                self._embedder, [sentences[i].scored_text for i in chosen]
            )
            for i, vector in zip(chosen, vectors, strict=True):
                dense[i] = _cosine(asked, vector)
        return [w_dense * d + rest for d, rest in zip(dense, lexical, strict=True)]

    def _sentence_vectors(
        self, embedder: SentenceEmbedder, texts: Sequence[str]
    ) -> list[list[float]]:
        """Vectors of the texts, embedding only those not seen recently."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        fresh = dict(zip(missing, embedder.embed_documents(missing), strict=True))
        with self._lock:
            for text, vector in fresh.items():
                self._vectors[text] = vector
            found = [fresh.get(t) or self._vectors[t] for t in texts]
            for text in texts:
                if text in self._vectors:
                    self._vectors.move_to_end(text)
            while len(self._vectors) > self._cache_size:
                self._vectors.popitem(last=False)
        return found

    def similarity(self, claims: Sequence[str], hits: Sequence[ScoredChunk]) -> list[float]:
        """For each claim, the best cosine to a sentence of the passages (0 without an
        embedder): whether the sources say nearly the same thing, in any words."""
        sentences = [s.text for s in self.sentences(hits)]
        if self._embedder is None or not sentences or not claims:
            return [0.0] * len(claims)
        vectors = self._sentence_vectors(self._embedder, sentences)
        return [max(_cosine(c, v) for v in vectors)
                for c in self._embedder.embed_documents(list(claims))]  # fmt: skip

    @property
    def checks_evidence(self) -> bool:
        """Whether `weak_evidence` judges at all (a coverage of 0 turns it off)."""
        return bool(self._weak[0])

    def weak_evidence(self, question: str, hits: Sequence[ScoredChunk]) -> bool:
        """Whether the passages look unable to answer: none of the three best holds
        `weak_coverage` of the question's content words, and no sentence of them means nearly
        the same as the question (cosine below `weak_similarity`; the second test keeps
        questions asked in other words). Measured on ClapNQ in `docs/asking.md`."""
        coverage, similarity = self._weak
        asked = set(_stems(question))
        if not coverage or not asked or not hits:
            return False
        held = max(len(asked & set(_stems(h.chunk.text))) for h in hits[:3])
        if held / len(asked) >= coverage:
            return False
        sentences = self.sentences(hits)
        if self._embedder is None or not sentences:
            return True
        vectors = self._sentence_vectors(self._embedder, [s.scored_text for s in sentences])
        asked_vector = self._embedder.embed_query(question)
        return max(_cosine(asked_vector, v) for v in vectors) < similarity

    def select(self, question: str, hits: Sequence[ScoredChunk], count: int = 6
               ) -> list[ScoredChunk]:  # fmt: skip
        """The passages cut down to their `count` best sentences in all (in their own order);
        passages left with none are dropped. What a small model reads more easily."""
        sentences = self.sentences(hits)
        if not sentences:
            return list(hits)
        scores = self.scores(question, sentences, hits)
        best = set(sorted(range(len(sentences)), key=lambda i: -scores[i])[:count])
        kept: dict[int, list[str]] = {}
        for i in sorted(best):
            kept.setdefault(sentences[i].n, []).append(sentences[i].text)
        return [
            ScoredChunk(dataclasses.replace(hit.chunk, text=" ".join(kept[n])), hit.score)
            for n, hit in enumerate(hits, start=1)
            if n in kept
        ]

    def extract(self, question: str, hits: Sequence[ScoredChunk]) -> str:
        """The answer: the best sentences, each with its [n]; empty if the passages hold none,
        or if even the best sentence scores below `min_score` (weak evidence: refuse).

        A sentence that is itself a question, or quotes this one, is an example, not an answer;
        an entry of a reference list names a paper and answers nothing.
        """
        asked = _plain(question)
        every = self.sentences(hits)
        cited_paper = {
            i + step
            for i, s in enumerate(every)
            if _REFERENCE_AUTHORS.match(s.text)
            for step in (0, 1)
            if i + step < len(every) and every[i + step].n == s.n
        }
        sentences = [
            s
            for i, s in enumerate(every)
            if not s.text.rstrip().endswith("?")
            and asked not in _plain(s.text)
            and i not in cited_paper
        ]
        if not sentences:
            return ""
        scores = self.scores(question, sentences, hits)
        if max(scores) < self._min_score:
            return ""
        ranked = sorted(range(len(sentences)), key=lambda i: -scores[i])
        groups: list[tuple[int, ...]] = []
        for i in ranked[: self._max_sentences]:
            if groups and scores[i] < self._within * scores[ranked[0]]:
                break
            group = tuple(self._with_context(sentences, i))
            if not any(set(group) <= set(g) for g in groups):
                groups.append(group)
        parts: list[str] = []
        for group in groups:
            part = _cited([sentences[i] for i in group])
            if degenerate(part):  # a source line that says nothing, or reads as a loop
                continue
            # Overlapping chunks hold the same sentence: it is said once.
            if any(_plain(_MARKER.sub("", part)) in _plain(p) for p in parts):
                continue
            joined = " ".join([*parts, part])
            # Two passages that share a phrase can read as a loop; the first one is enough.
            if parts and (len(joined) > self._max_chars or degenerate(joined)):
                break
            parts.append(part)
        return " ".join(parts)

    @staticmethod
    def _with_context(sentences: Sequence[Sentence], i: int, rows: int = 8) -> list[int]:
        """Sentence i with what it needs to be read alone: the one before when it continues it
        (begins in lower case, under the same heading), the list or table after a lead-in
        (ends with ':'), or the next sentence when that one completes it."""

        def same(j: int) -> bool:
            return 0 <= j < len(sentences) and sentences[j].n == sentences[i].n

        # Not across a heading: a section may open in lower case ("ragqa ingests ...").
        leans = sentences[i].text[:1].islower() and sentences[i - 1].topic == sentences[i].topic
        chosen = [i - 1] if same(i - 1) and leans else []
        chosen.append(i)
        if sentences[i].text.rstrip().endswith(":"):
            after = range(i + 1, i + 1 + rows)
            chosen += itertools.takewhile(lambda j: same(j) and sentences[j].item, after)
        elif same(i + 1) and _completes(sentences[i].text, sentences[i + 1].text):
            chosen.append(i + 1)
        return chosen


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _completes(sentence: str, following: str) -> bool:
    """Whether `following` finishes the thought `sentence` starts."""
    return (sentence.rstrip().endswith(":") or len(content_words(sentence)) < 4
            or bool(_CONTINUES.match(following)))  # fmt: skip


def _cited(group: Sequence[Sentence]) -> str:
    """Sentences of one passage read as one (a lead-in's rows joined by ' | '), with the
    passage's [n] before the final full stop."""
    text = without_references(group[0].text)
    for before, sentence in itertools.pairwise(group):
        text += " | " if before.item and sentence.item else " "
        text += without_references(sentence.text)
    n = group[0].n
    if text.endswith((".", "!", "?")):
        return f"{text[:-1]} [{n}]{text[-1]}"
    return f"{text} [{n}]"
