"""Find the [n] markers in an answer and map them to the sources the model was given."""

from __future__ import annotations

import re
from collections.abc import Sequence

from generation.types import Citation
from retrieval.types import ScoredChunk

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def parse_citations(text: str) -> list[int]:
    """The source numbers cited in `text`, in order of first mention, without repeats."""
    seen: list[int] = []
    for match in _MARKER.finditer(text):
        for number in match.group(1).split(","):
            n = int(number)
            if n not in seen:
                seen.append(n)
    return seen


def _citation(n: int, hit: ScoredChunk) -> Citation:
    chunk = hit.chunk
    return Citation(
        n=n,
        source=chunk.source,
        page=chunk.page,
        chunk_id=chunk.id,
        text=chunk.text,
        score=hit.score,
    )


def resolve_citations(
    text: str, hits: Sequence[ScoredChunk], *, fallback: int = 3
) -> tuple[tuple[Citation, ...], bool]:
    """Citations for an answer, and whether they were inferred.

    Markers that point outside the given sources are dropped: every citation is a chunk the
    model actually saw. If none remain, the best `fallback` sources are returned, flagged
    as inferred.
    """
    cited = [n for n in parse_citations(text) if 1 <= n <= len(hits)]
    if cited:
        return tuple(_citation(n, hits[n - 1]) for n in cited), False
    best = list(enumerate(hits, start=1))[:fallback]
    return tuple(_citation(n, hit) for n, hit in best), True
