"""The catalogue of a collection: one record per document, naming its visible version."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from retrieval.chroma import ChromaStore
from retrieval.types import DocumentRecord, MetadataValue


class DocumentNotFoundError(Exception):
    """The document asked for is not in the collection's catalogue."""

    def __init__(self, collection: str, source: str) -> None:
        super().__init__(
            f"No document {source!r} in collection {collection!r}; "
            f"`ragqa documents --collection {collection}` lists them."
        )


def _record_id(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:32]


def _to_record(metadata: dict[str, Any]) -> DocumentRecord:
    return DocumentRecord(
        source=str(metadata["source"]),
        content_hash=str(metadata["content_hash"]),
        pages=int(metadata["pages"]),
        chunks=int(metadata["chunks"]),
        ingested_at=str(metadata["ingested_at"]),
        status=str(metadata.get("status", "ready")),
        error=str(metadata.get("error", "")),
        parent=str(metadata.get("parent", "")),
    )


class Catalog:
    """Document records in each collection's companion Chroma collection.

    A record's `content_hash` names the document's current version: only chunks of that
    version are visible, so one record update switches a document from one version to another.
    """

    def __init__(self, store: ChromaStore) -> None:
        self._store = store

    def current_versions(self, collection: str, sources: Iterable[str]) -> dict[str, str]:
        """The visible version of each of `sources` that has a ready record."""
        catalog = self._store.catalog(collection)
        wanted = [_record_id(s) for s in sources]
        if catalog is None or not wanted:
            return {}
        found = catalog.get(ids=wanted, include=["metadatas"])
        return {
            str(m["source"]): str(m["content_hash"])
            for m in found["metadatas"]
            if m.get("status", "ready") == "ready"
        }

    def documents(self, collection: str) -> dict[str, DocumentRecord]:
        """Every document in the catalogue, by source (empty if the collection is new)."""
        catalog = self._store.catalog(collection)
        if catalog is None:
            return {}
        records = [_to_record(dict(m)) for m in catalog.get(include=["metadatas"])["metadatas"]]
        return {r.source: r for r in sorted(records, key=lambda r: r.source)}

    def put(self, collection: str, record: DocumentRecord) -> None:
        """Record a document version: from this moment its chunks are the visible ones."""
        self._store.chunks(collection, create=True)
        catalog: Any = self._store.catalog(collection, create=True)
        metadata: dict[str, MetadataValue] = {
            "source": record.source,
            "content_hash": record.content_hash,
            "pages": record.pages,
            "chunks": record.chunks,
            "ingested_at": record.ingested_at,
            "status": record.status,
        }
        if record.error:
            metadata["error"] = record.error
        if record.parent:
            metadata["parent"] = record.parent
        catalog.upsert(
            ids=[_record_id(record.source)],
            embeddings=[[1.0]],
            documents=[record.source],
            metadatas=[metadata],
        )

    def remove(self, collection: str, source: str) -> None:
        """Drop a document's record (its chunks are hidden at once); raise if there is none."""
        catalog = self._store.catalog(collection)
        known = catalog is not None and catalog.get(ids=[_record_id(source)])["ids"]
        if not known:
            raise DocumentNotFoundError(collection, source)
        catalog.delete(ids=[_record_id(source)])  # type: ignore[union-attr]
