"""Questions generated from chunks by the configured generator (`ragqa dataset build
--generate N`, off by default): for documents nobody wrote questions about. The answer is the
chunk's own sentences that answer the generated question, so the target is always grounded;
questions that do not read as one, or that the chunk cannot answer, are dropped."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from finetune.records import QAPair
from generation.citations import content_words
from generation.extractive import SentenceExtractor
from generation.generator import Generator
from generation.verification import degenerate
from retrieval.types import Chunk, ScoredChunk

ASK = (
    "Write one question that the passage below answers. Write only the question, ending with "
    "a question mark.\n\nPassage:\n{text}"
)
_MARKER = re.compile(r"\s*\[\d+\]")


def generate_pairs(
    generator: Generator, chunks: Sequence[Chunk], count: int, *, seed: int = 0,
    extractor: SentenceExtractor | None = None,
) -> tuple[list[QAPair], int]:  # fmt: skip
    """Up to `count` pairs from chunks drawn at random (seeded); also how many were dropped."""
    extractor = extractor or SentenceExtractor(max_sentences=1)
    drawn = random.Random(seed).sample(list(chunks), min(count, len(chunks)))
    pairs, dropped = [], 0
    for chunk in drawn:
        reply = generator.generate([{"role": "user", "content": ASK.format(text=chunk.text)}],
                                   max_new_tokens=48, stop=("\n",))  # fmt: skip
        question = reply.text.strip().split("\n")[0].strip()
        shared = content_words(question) & content_words(chunk.text)
        if not question.endswith("?") or degenerate(question) or len(shared) < 2:
            dropped += 1
            continue
        answer = _MARKER.sub("", extractor.extract(question, [ScoredChunk(chunk, 1.0)])).strip()
        if not answer:
            dropped += 1
            continue
        pairs.append(QAPair(question, answer, chunk.source, origin="generated"))
    return pairs, dropped
