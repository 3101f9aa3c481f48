"""The answer a user gets back, and the sources it cites."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Citation:
    """A source given to the model and cited by the answer as [n]."""

    n: int
    source: str
    page: int | None
    chunk_id: str
    text: str
    score: float

    def to_dict(self) -> dict[str, object]:
        """JSON shape of a citation."""
        return {
            "n": self.n,
            "source": self.source,
            "page": self.page,
            "chunk_id": self.chunk_id,
            "text": self.text,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Answer:
    """A generated answer.

    `citations_inferred` is True when the model cited nothing and the citations are the sources
    it was given, best first, rather than ones it named.
    """

    text: str
    mode: str
    refused: bool
    citations: tuple[Citation, ...]
    citations_inferred: bool = False
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of `ragqa ask --json` and `POST /api/chat`."""
        return {
            "answer": self.text,
            "mode": self.mode,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "citations_inferred": self.citations_inferred,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }
