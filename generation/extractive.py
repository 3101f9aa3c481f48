"""Extractive answers: the sentences of the retrieved passages that best answer the question,
each followed by the [n] of its passage. No generator call, so an answer takes milliseconds
and every word of it is in a source."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from generation.citations import content_words
from retrieval.types import ScoredChunk

_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9`$])")
# A sentence that opens with one of these leans on the one before it.
_CONTINUES = re.compile(
    r"^(?:it|this|that|these|those|they|then|so|otherwise|however|for example|e\.g\.|also)\b",
    re.IGNORECASE,
)


class SentenceEmbedder(Protocol):
    """What extraction needs from an embedder (retrieval's Embedder has it)."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """The unit vector of a question."""
        ...


@dataclass(frozen=True)
class Sentence:
    """One sentence (or table row, or list item) of a retrieved passage."""

    text: str
    n: int  # the passage's number in the answer, from 1
    position: int  # its place in the passage


def _table_row(line: str) -> str:
    cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
    return "; ".join(c for c in cells if c and not set(c) <= set("-: "))


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage: prose split at sentence ends (wrapped lines joined), and each
    table row or list item on its own."""
    units: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        prose: list[str] = []
        item = False  # inside a list item: indented lines continue it
        for line in block.splitlines():
            if line.lstrip().startswith("#"):  # a heading names a topic; it answers nothing
                continue
            if line.lstrip().startswith("|") or _LIST_ITEM.match(line):
                units += _SENTENCE_END.split(" ".join(prose)) if prose else []
                prose, item = [], not line.lstrip().startswith("|")
                row = _table_row(line) if not item else _LIST_ITEM.sub("", line.strip())
                units.append(row)
            elif item and line.startswith((" ", "\t")) and line.strip():
                units[-1] += " " + line.strip()
            elif line.strip():
                prose.append(line.strip())
                item = False
        units += _SENTENCE_END.split(" ".join(prose)) if prose else []
    return [u.strip() for u in units if len(content_words(u)) >= 2]


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _stems(text: str) -> Counter[str]:
    """Content words with -ing and -ed cut, so 'ingesting' meets 'ingest'."""
    return Counter(re.sub(r"(?<=\w{4})(?:ing|ed)$", "", w) for w in content_words(text))


def _keyword_scores(question: str, sentences: Sequence[Sentence]) -> list[float]:
    """BM25 of each sentence for the question's content words, over these sentences."""
    words = [_stems(s.text) for s in sentences]
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
    ) -> None:
        self._embedder = embedder
        # Sentence vectors by text, least recently used out: popular passages come back often.
        self._vectors: OrderedDict[str, list[float]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._max_sentences = max_sentences
        self._max_chars = max_chars
        self._weights = (dense_weight, keyword_weight, passage_weight)

    def sentences(self, hits: Sequence[ScoredChunk]) -> list[Sentence]:
        """Every sentence of the passages, numbered by passage."""
        return [
            Sentence(text, n, position)
            for n, hit in enumerate(hits, start=1)
            for position, text in enumerate(split_sentences(hit.chunk.text))
        ]

    def scores(self, question: str, sentences: Sequence[Sentence],
               hits: Sequence[ScoredChunk]) -> list[float]:  # fmt: skip
        """How well each sentence answers the question (higher is better)."""
        keyword = _keyword_scores(question, sentences)
        best = max(keyword, default=0.0) or 1.0
        dense = [0.0] * len(sentences)
        if self._embedder is not None and sentences:
            asked = self._embedder.embed_query(question)
            vectors = self._sentence_vectors(self._embedder, [s.text for s in sentences])
            dense = [_cosine(asked, v) for v in vectors]
        w_dense, w_keyword, w_passage = self._weights
        return [
            w_dense * d + w_keyword * k / best + w_passage * hits[s.n - 1].score
            for s, d, k in zip(sentences, dense, keyword, strict=True)
        ]

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

    def extract(self, question: str, hits: Sequence[ScoredChunk]) -> str:
        """The answer: the best sentences, each with its [n]; empty if the passages hold none.

        A sentence that is itself a question, or quotes this one, is an example, not an answer.
        """
        asked = _plain(question)
        sentences = [
            s
            for s in self.sentences(hits)
            if not s.text.rstrip().endswith("?") and asked not in _plain(s.text)
        ]
        if not sentences:
            return ""
        scores = self.scores(question, sentences, hits)
        ranked = sorted(range(len(sentences)), key=lambda i: -scores[i])
        chosen: list[int] = []
        for i in ranked[: self._max_sentences]:
            if chosen and scores[i] < 0.8 * scores[ranked[0]]:
                break
            chosen.append(i)
            following = i + 1
            if (following < len(sentences) and sentences[following].n == sentences[i].n
                    and _completes(sentences[i].text, sentences[following].text)):  # fmt: skip
                chosen.append(following)
        parts: list[str] = []
        for i in dict.fromkeys(chosen):  # keep order, drop repeats
            part = _cited(sentences[i])
            if parts and len(" ".join([*parts, part])) > self._max_chars:
                break
            parts.append(part)
        return " ".join(parts)


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _completes(sentence: str, following: str) -> bool:
    """Whether `following` finishes the thought `sentence` starts."""
    return (sentence.rstrip().endswith(":") or len(content_words(sentence)) < 4
            or bool(_CONTINUES.match(following)))  # fmt: skip


def _cited(sentence: Sentence) -> str:
    """The sentence with its [n] before its final full stop."""
    text = sentence.text.rstrip()
    if text.endswith((".", "!", "?")):
        return f"{text[:-1]} [{sentence.n}]{text[-1]}"
    return f"{text} [{sentence.n}]"
