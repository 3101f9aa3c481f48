"""Values shared by every layer: a chunk of a document and a chunk with its search score."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

MetadataValue = str | int | float | bool


@dataclass(frozen=True)
class Chunk:
    """A piece of one page of one document, with where it came from.

    `start` is the character offset of `text` in the page text it was cut from, so
    `page_text[start : start + len(text)] == text`. `page` is 1-based for paged documents (PDF)
    and None for documents without pages.
    """

    id: str
    text: str
    source: str
    page: int | None = None
    start: int = 0
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    @staticmethod
    def make_id(source: str, page: int | None, start: int, text: str) -> str:
        """Return the content hash that identifies a chunk: same source, place and text, same id."""
        digest = hashlib.sha256()
        for part in (source, "" if page is None else str(page), str(start), text):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()[:32]


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk returned by a search; `score` is its cosine similarity to the query."""

    chunk: Chunk
    score: float
