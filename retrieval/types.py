"""Values shared by every layer: chunks, scored chunks and the catalogue record of a document."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

MetadataValue = str | int | float | bool


class SearchMode(StrEnum):
    """How chunks are found: dense vectors, BM25 keywords, or both fused."""

    DENSE = "dense"
    KEYWORD = "keyword"
    HYBRID = "hybrid"


class Fusion(StrEnum):
    """How hybrid search merges its two rankings."""

    SCORE = "score"  # cosine plus relative BM25
    RRF = "rrf"  # reciprocal rank fusion


@dataclass(frozen=True)
class Chunk:
    """A piece of one page of one document, with where it came from.

    `start` is the character offset of `text` in the page text it was cut from, so
    `page_text[start : start + len(text)] == text`. `page` is 1-based for paged documents (PDF)
    and None for documents without pages. `version` is the content hash of the document
    version the chunk belongs to: only chunks of a document's current version are visible.
    """

    id: str
    text: str
    source: str
    page: int | None = None
    start: int = 0
    version: str = ""
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """Where the chunk is, for a reader: "page 3 · Install > Linux", "slide 4 · Pricing",
        "sheet Prices, rows 12-24", "e-mail “Q3 prices”, 2026-11-02", "page 2 · attached to
        “Q3 prices”, 2026-11-02" (from its page and the metadata its loader set)."""
        meta = self.metadata
        if meta.get("subject"):
            return f"e-mail “{meta['subject']}”" + (f", {meta['date']}" if meta.get("date") else "")
        parts = []
        if meta.get("sheet"):
            parts.append(f"sheet {meta['sheet']}, rows {meta.get('rows', '?')}")
        elif meta.get("slide"):
            parts.append(f"slide {meta['slide']}")
        elif self.page is not None:
            parts.append(f"page {self.page}")
        if meta.get("section") and not meta.get("sheet"):
            parts.append(str(meta["section"]))
        if meta.get("attached_to"):
            subject, day = meta.get("message_subject"), meta.get("message_date")
            message = f"“{subject}”" + (f", {day}" if day else "") if subject else ""
            parts.append(f"attached to {message or meta['attached_to']}")
        return " · ".join(parts)

    @staticmethod
    def make_id(source: str, version: str, page: int | None, start: int, text: str) -> str:
        """The content hash that identifies a chunk: same document version, place and text."""
        digest = hashlib.sha256()
        for part in (source, version, "" if page is None else str(page), str(start), text):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()[:32]


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk returned by a search.

    `score` is always the cosine similarity of the chunk to the query, whatever ranked it, so
    one threshold means the same in every search mode. `details` holds the rankers' own scores
    (dense, keyword BM25, rrf, rerank).
    """

    chunk: Chunk
    score: float
    details: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON shape of a search hit (`ragqa search --json`, `POST /api/search`)."""
        chunk = self.chunk
        return {
            "chunk_id": chunk.id,
            "source": chunk.source,
            "page": chunk.page,
            "start": chunk.start,
            "section": chunk.metadata.get("section"),
            "location": chunk.location,
            "text": chunk.text,
            "score": round(self.score, 4),
            "details": {k: round(v, 4) for k, v in self.details.items()},
        }


@dataclass(frozen=True)
class DocumentRecord:
    """One document of a collection, as the catalogue lists it.

    `source` is the document's stable id within the collection; `content_hash` names its
    current version. `status` is "ready" (searchable) or "failed" (with `error`). `parent`
    names the document this one came inside (an e-mail's attachment: the message).
    """

    source: str
    content_hash: str
    pages: int
    chunks: int
    ingested_at: str
    status: str = "ready"
    error: str = ""
    parent: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON shape of a catalogue entry."""
        return {
            "source": self.source,
            "content_hash": self.content_hash,
            "pages": self.pages,
            "chunks": self.chunks,
            "ingested_at": self.ingested_at,
            "status": self.status,
            "error": self.error or None,
            "attached_to": self.parent or None,
        }
