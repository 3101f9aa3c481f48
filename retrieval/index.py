"""The chunk index: named collections of chunks with their vectors and keywords, of which only
each document's current version is visible."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from retrieval.catalog import Catalog
from retrieval.chroma import ChromaStore, CollectionNotFoundError, to_chunk, to_metadata
from retrieval.disk import disk_full, store_full
from retrieval.filters import SearchFilter
from retrieval.keyword import KeywordIndex
from retrieval.keyword_pg import PostgresKeywordIndex
from retrieval.recovery import DamagedIndexError, Embed
from retrieval.types import Chunk, DocumentRecord, ScoredChunk

logger = logging.getLogger(__name__)


class ChromaIndex:
    """Chunks and their vectors in named collections, each with a catalogue of its documents.

    Only chunks of a document's current version (the one its catalogue record names) are
    returned by searches, so replacing a document is one atomic catalogue update: before it
    the old version is visible, after it the new one, never both or neither.
    """

    def __init__(
        self,
        *,
        client: Any,
        embedder_name: str,
        keyword: KeywordIndex | PostgresKeywordIndex | None = None,
        embed: Embed | None = None,
        embedder_backend: str = "torch",
    ) -> None:
        """`embed` (the embedder's embed_documents) rebuilds vectors an interrupted write
        damaged (without it such a collection raises DamagedIndexError) and checks the vectors
        of a collection that another `embedder_backend` built."""
        self._store = ChromaStore(client=client, embedder_name=embedder_name, embed=embed,
                                  embedder_backend=embedder_backend)  # fmt: skip
        self._catalog = Catalog(self._store)
        self._keyword = keyword or KeywordIndex()

    def _collection(self, name: str, *, create: bool = False) -> Any:
        return self._store.chunks(name, create=create)

    def batch_size(self) -> int:
        """The most records Chroma takes in one call."""
        return self._store.batch_size()

    @property
    def repaired(self) -> list[str]:
        """The collections this index has repaired, in order."""
        return self._store.repaired

    def check(self) -> list[str]:
        """Check every collection's vectors now, repairing damaged ones; return those repaired.

        One that cannot be repaired here is logged and skipped: it raises DamagedIndexError
        when used, and the others keep working.
        """
        for name in self.list_collections():
            try:
                self._store.check(name)
            except DamagedIndexError as error:
                logger.error("%s", error)
        return self.repaired

    # ------------------------------------------------------------------ collections

    def list_collections(self) -> list[str]:
        """Names of all collections, sorted."""
        return self._store.names()

    def count(self, collection: str) -> int:
        """Number of stored chunks in a collection (raises if it does not exist)."""
        return int(self._collection(collection).count())

    def delete_collection(self, collection: str) -> None:
        """Remove a collection, its chunks and its catalogue."""
        self._store.delete(collection)
        self._keyword.drop(collection)

    # ------------------------------------------------------------------ chunks

    def upsert(
        self, collection: str, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]
    ) -> None:
        """Insert or replace chunks with their vectors, in batches Chroma accepts."""
        if len(chunks) != len(embeddings):
            raise ValueError(f"{len(chunks)} chunks but {len(embeddings)} embeddings")
        target = self._collection(collection, create=True)
        batch = self.batch_size()
        for i in range(0, len(chunks), batch):
            part = chunks[i : i + batch]
            target.upsert(
                ids=[c.id for c in part],
                documents=[c.text for c in part],
                metadatas=[to_metadata(c) for c in part],
                embeddings=[list(e) for e in embeddings[i : i + batch]],
            )
        self._keyword.add(collection, chunks)

    def vectors(self, collection: str, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors by chunk id."""
        if not ids:
            return {}
        found = self._collection(collection).get(ids=list(ids), include=["embeddings"])
        return {
            i: [float(x) for x in v] for i, v in zip(found["ids"], found["embeddings"], strict=True)
        }

    def vectors_for_source(self, collection: str, source: str) -> dict[str, list[float]]:
        """Stored vectors of every chunk of `source`, keyed by chunk text (to reuse them)."""
        try:
            target = self._collection(collection)
        except CollectionNotFoundError:
            return {}
        found = target.get(where={"source": source}, include=["documents", "embeddings"])
        return {
            text: [float(x) for x in vector]
            for text, vector in zip(found["documents"], found["embeddings"], strict=True)
        }

    def chunks_of(self, collection: str, source: str) -> list[Chunk]:
        """The chunks of the current version of `source`, in document order."""
        record = self.documents(collection).get(source)
        if record is None:
            return []
        where = {"$and": [{"source": source}, {"version": record.content_hash}]}
        found = self._collection(collection).get(where=where, include=["documents", "metadatas"])
        rows = zip(found["ids"], found["documents"], found["metadatas"], strict=True)
        return sorted((to_chunk(i, text, dict(meta)) for i, text, meta in rows),
                      key=lambda c: (c.page or 0, c.start))  # fmt: skip

    def chunk_ids(self, collection: str, source: str, version: str | None = None) -> set[str]:
        """Ids of the stored chunks of `source` (of one version, if given)."""
        try:
            target = self._collection(collection)
        except CollectionNotFoundError:
            return set()
        where: dict[str, Any] = {"source": source}
        if version is not None:
            where = {"$and": [{"source": source}, {"version": version}]}
        return set(target.get(where=where, include=[])["ids"])

    def delete_chunks(self, collection: str, source: str, *, keep_version: str = "") -> int:
        """Delete the chunks of `source`, except those of `keep_version`; return how many."""
        stale = self.chunk_ids(collection, source) - (
            self.chunk_ids(collection, source, keep_version) if keep_version else set()
        )
        self._delete_ids(collection, sorted(stale))
        return len(stale)

    def sweep(self, collection: str) -> int:
        """Delete chunks of no current document version (left by an interrupted ingest)."""
        target = self._collection(collection)
        current = {
            s: r.content_hash for s, r in self.documents(collection).items() if r.status == "ready"
        }
        stale: list[str] = []
        batch, offset = self.batch_size(), 0
        while (found := target.get(include=["metadatas"], limit=batch, offset=offset))["ids"]:
            stale += [
                chunk_id
                for chunk_id, meta in zip(found["ids"], found["metadatas"], strict=True)
                if current.get(str(meta["source"])) != meta.get("version")
            ]
            offset += len(found["ids"])
        for i in range(0, len(stale), batch):
            target.delete(ids=stale[i : i + batch])
        keyword_stale = [
            chunk_id
            for chunk_id, source, version in self._keyword.rows(collection)
            if current.get(source) != version
        ]
        self._keyword.delete(collection, keyword_stale)
        if self._keyword.count(collection) != target.count():
            self.rebuild_keyword(collection)
        return len(stale)

    def rebuild_keyword(self, collection: str) -> int:
        """Rebuild the keyword index of a collection from the stored chunks; return how many.

        The keyword index is derived data: this restores it after an upgrade, a lost
        keyword.sqlite, or on a server that shares a Chroma server another one filled.
        """
        target = self._collection(collection)
        chunks: list[Chunk] = []
        batch, offset = self.batch_size(), 0
        while (found := target.get(include=["documents", "metadatas"], limit=batch,
                                   offset=offset))["ids"]:  # fmt: skip
            rows = zip(found["ids"], found["documents"], found["metadatas"], strict=True)
            chunks += [to_chunk(i, text, dict(meta)) for i, text, meta in rows]
            offset += len(found["ids"])
        logger.info("rebuilding the keyword index of %r from %d chunks", collection, len(chunks))
        self._keyword.replace(collection, chunks)
        return len(chunks)

    def keyword_count(self, collection: str) -> int:
        """Chunks in the keyword index of a collection (equal to count() when in step)."""
        return self._keyword.count(collection)

    def query(
        self,
        collection: str,
        embedding: Sequence[float],
        k: int,
        *,
        where: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        """The `k` visible chunks closest to `embedding`, best first, scored by cosine."""
        target = self._collection(collection)
        stored = int(target.count())
        if stored == 0:
            raise CollectionNotFoundError(collection, empty=True)
        clause = where.chroma_where() if where else None
        wanted = min(stored, k + max(4, k // 2))  # a little extra for invisible versions
        while True:
            hits = self._nearest(target, embedding, wanted, clause)
            current = self._catalog.current_versions(collection, {h.chunk.source for h in hits})
            visible = [h for h in hits if current.get(h.chunk.source) == h.chunk.version]
            if len(visible) >= k or wanted >= stored or len(hits) < wanted:
                return visible[:k]
            wanted = min(stored, wanted * 4)

    def keyword_query(
        self, collection: str, question: str, k: int, *, where: SearchFilter | None = None
    ) -> list[tuple[Chunk, float]]:
        """The `k` visible chunks best matching the question's words (BM25), best first."""
        target = self._collection(collection)  # a clear error if it does not exist
        if self._keyword.is_empty(collection) and target.count() > 0:
            self.rebuild_keyword(collection)
        wanted = k + max(4, k // 2)
        while True:
            hits = self._keyword.search(collection, question, wanted, where=where)
            current = self._catalog.current_versions(collection, {c.source for c, _ in hits})
            visible = [(c, s) for c, s in hits if current.get(c.source) == c.version]
            if len(visible) >= k or len(hits) < wanted:
                return visible[:k]
            wanted *= 4

    @staticmethod
    def _nearest(
        target: Any, embedding: Sequence[float], n: int, where: dict[str, Any] | None
    ) -> list[ScoredChunk]:
        result = target.query(
            query_embeddings=[list(embedding)],
            n_results=n,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        rows = zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            strict=True,
        )
        # A record another process is writing may show its id before its text and metadata;
        # it is not visible yet (the catalogue names its version only once it is whole).
        return [
            ScoredChunk(chunk=to_chunk(i, doc, dict(meta)), score=1.0 - float(dist))
            for i, doc, meta, dist in rows
            if doc is not None and meta
        ]

    # ------------------------------------------------------------------ catalogue

    def documents(self, collection: str) -> dict[str, DocumentRecord]:
        """Every document in the catalogue, by source (empty if the collection is new)."""
        return self._catalog.documents(collection)

    def put_document(self, collection: str, record: DocumentRecord) -> None:
        """Record a document version: from this moment its chunks are the visible ones."""
        self._catalog.put(collection, record)

    def publish(
        self,
        collection: str,
        records: Sequence[DocumentRecord],
        chunks: Sequence[Chunk],
        embeddings: Sequence[Sequence[float]],
    ) -> int:
        """Make `chunks` the visible versions of the documents `records` name; return how many
        chunks of their old versions were removed.

        The new versions are stored beside the old ones, the catalogue switches to them, then
        the old ones are deleted: a crash at any step leaves one whole version of each
        document visible, never both or neither (the next ingest's sweep removes leftovers).
        """
        try:
            self.upsert(collection, chunks, embeddings)
            for record in records:
                self._catalog.put(collection, record)
        except Exception as error:  # before the catalogue switches, the old versions stand
            folder = self._store.persist_root()
            if disk_full(error, folder):
                names = ", ".join(r.source.rsplit("/", 1)[-1] for r in records) or "the file"
                raise store_full(folder, names) from error
            raise
        current = {r.source: r.content_hash for r in records}
        if not current:
            return 0
        found = self._collection(collection).get(
            where={"source": {"$in": sorted(current)}}, include=["metadatas"]
        )
        stale = [
            chunk_id
            for chunk_id, meta in zip(found["ids"], found["metadatas"], strict=True)
            if meta.get("version") != current[str(meta["source"])]
        ]
        self._delete_ids(collection, stale)
        return len(stale)

    def _delete_ids(self, collection: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        target, batch = self._collection(collection), self.batch_size()
        for i in range(0, len(ids), batch):
            target.delete(ids=list(ids[i : i + batch]))
        self._keyword.delete(collection, ids)

    def remove_document(self, collection: str, source: str) -> int:
        """Remove a document: hidden at once, then its chunks deleted. Returns chunks removed."""
        self._catalog.remove(collection, source)
        return self.delete_chunks(collection, source)
