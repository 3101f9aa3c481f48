"""Documents that come inside a file (an e-mail's attachments, and theirs): each is stored
under its own id, `<file>/<name>`, in the version of the file that holds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.loaders import Page
from retrieval.types import Chunk, DocumentRecord


@dataclass(frozen=True)
class Part:
    """A document that came inside a file, with its pages and chunks, or why it is unread."""

    source: str
    parent: str
    pages: int
    chunks: int
    error: str = ""

    def record(self, content_hash: str) -> DocumentRecord:
        """Its catalogue entry, in the version `content_hash` of the file that holds it."""
        return DocumentRecord(
            source=self.source,
            content_hash=content_hash,
            pages=self.pages,
            chunks=self.chunks,
            ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
            status="failed" if self.error else "ready",
            error=self.error,
            parent=self.parent,
        )


def inner_documents(
    source: str, pages: Sequence[Page], chunks: Sequence[Chunk]
) -> tuple[Part, ...]:
    """The documents that came inside `source`, in reading order, with their pages and chunks
    (an unreadable one is an empty page whose metadata says why)."""
    found: dict[str, Part] = {}
    for page in pages:
        if page.source == source:
            continue
        last = found.get(page.source)
        parent = str(page.metadata.get("attached_to") or source)
        found[page.source] = Part(page.source, parent, (last.pages if last else 0) + 1, 0,
                                  str(page.metadata.get("error", "")))  # fmt: skip
    counts: dict[str, int] = {}
    for chunk in chunks:
        counts[chunk.source] = counts.get(chunk.source, 0) + 1
    return tuple(
        Part(p.source, p.parent, p.pages, counts.get(p.source, 0),
             p.error or ("" if counts.get(p.source) else "the attachment contains no text"))
        for p in found.values()
    )  # fmt: skip


def descendants(catalogue: Mapping[str, DocumentRecord], source: str) -> set[str]:
    """The documents in the catalogue that came inside `source` (attachments, and theirs)."""
    prefix = source + "/"
    return {s for s, r in catalogue.items() if r.parent and s.startswith(prefix)}
