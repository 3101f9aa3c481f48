"""The vector index: named Chroma collections of chunks (the only module that imports chromadb)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from retrieval.filters import SearchFilter
from retrieval.keyword import KeywordIndex
from retrieval.recovery import DamagedIndexError, Embed, VectorRepair
from retrieval.types import Chunk, DocumentRecord, MetadataValue, ScoredChunk

logger = logging.getLogger(__name__)

# Chroma's own rule for collection names, stated so we can explain it before Chroma refuses.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_EMBEDDER_KEY = "ragqa:embedder"
_RESERVED = {"source", "page", "start", "version"}
# Each collection's document catalogue lives in a companion collection with this suffix.
CATALOG_SUFFIX = "__catalog"


class CollectionNotFoundError(Exception):
    """The collection asked for does not exist, or holds no chunks."""

    def __init__(self, collection: str, *, empty: bool = False) -> None:
        state = "is empty" if empty else "does not exist"
        super().__init__(
            f"Collection {collection!r} {state}. Add documents first: "
            f"ragqa ingest PATH --collection {collection}"
        )
        self.collection = collection
        self.empty = empty


class DocumentNotFoundError(Exception):
    """The document asked for is not in the collection's catalogue."""

    def __init__(self, collection: str, source: str) -> None:
        super().__init__(
            f"No document {source!r} in collection {collection!r}; "
            f"`ragqa documents --collection {collection}` lists them."
        )


class EmbedderMismatchError(Exception):
    """The collection was built with a different embedding model than the one configured."""


class InvalidCollectionNameError(ValueError):
    """A collection name that Chroma would refuse."""


def validate_collection_name(name: str) -> str:
    """Return `name` if it is a valid collection name, else raise with the rule spelled out."""
    if not _NAME.match(name) or ".." in name or len(name) > 512 - len(CATALOG_SUFFIX):
        raise InvalidCollectionNameError(
            f"Invalid collection name {name!r}: use 3-500 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit."
        )
    if name.endswith(CATALOG_SUFFIX):
        raise InvalidCollectionNameError(
            f"Invalid collection name {name!r}: names ending in {CATALOG_SUFFIX!r} are reserved."
        )
    return name


def open_chroma_client(
    *, path: Path | None = None, host: str | None = None, port: int = 8000, ssl: bool = False
) -> Any:
    """Open an embedded store at `path`, or a Chroma server at `host`; telemetry is off."""
    import chromadb

    settings = chromadb.Settings(anonymized_telemetry=False)
    if host:
        return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
    if path is None:
        return chromadb.EphemeralClient(settings=settings)
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def _unit_vectors(texts: Sequence[str]) -> list[list[float]]:
    return [[1.0] for _ in texts]  # the catalogue's records are found by id, never by vector


def _is_damage(error: Exception) -> bool:
    """Whether Chroma failed because a collection's HNSW files are unreadable."""
    from chromadb.errors import InternalError

    text = str(error).lower()
    return isinstance(error, InternalError) and ("hnsw" in text or "error finding id" in text)


def _to_metadata(chunk: Chunk) -> dict[str, MetadataValue]:
    metadata: dict[str, MetadataValue] = {
        k: v for k, v in chunk.metadata.items() if k not in _RESERVED
    }
    metadata["source"] = chunk.source
    metadata["start"] = chunk.start
    metadata["version"] = chunk.version
    if chunk.page is not None:
        metadata["page"] = chunk.page
    return metadata


def _to_chunk(chunk_id: str, text: str, metadata: dict[str, Any]) -> Chunk:
    extra = {k: v for k, v in metadata.items() if k not in _RESERVED}
    page = metadata.get("page")
    return Chunk(
        id=chunk_id,
        text=text,
        source=str(metadata["source"]),
        page=int(page) if page is not None else None,
        start=int(metadata.get("start", 0)),
        version=str(metadata.get("version", "")),
        metadata=extra,
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
    )


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
        keyword: KeywordIndex | None = None,
        embed: Embed | None = None,
    ) -> None:
        """`embed` (the embedder's embed_documents) rebuilds vectors an interrupted write
        damaged; without it such a collection raises DamagedIndexError."""
        self._client = client
        self._embedder_name = embedder_name
        self._keyword = keyword or KeywordIndex()
        self._embed = embed
        self._repair = VectorRepair(self)

    def _collection(self, name: str, *, create: bool = False) -> Any:
        from chromadb.errors import NotFoundError

        validate_collection_name(name)
        if create:
            # embedding_function=None: we always pass our own vectors, and Chroma's default
            # function would download a model.
            collection = self._client.get_or_create_collection(
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={_EMBEDDER_KEY: self._embedder_name},
            )
        else:
            try:
                collection = self._client.get_collection(name, embedding_function=None)
            except NotFoundError:
                raise CollectionNotFoundError(name) from None
        recorded = (collection.metadata or {}).get(_EMBEDDER_KEY)
        if recorded is not None and recorded != self._embedder_name:
            raise EmbedderMismatchError(
                f"Collection {name!r} was built with the embedder {recorded!r}, but "
                f"{self._embedder_name!r} is configured. Set RAGQA_EMBEDDER__MODEL={recorded} "
                f"or re-ingest into a new collection."
            )
        return self._repair.healthy(collection, self._embed)

    def _catalog(self, name: str, *, create: bool = False) -> Any | None:
        from chromadb.errors import NotFoundError

        validate_collection_name(name)
        if create:
            catalog = self._client.get_or_create_collection(
                name + CATALOG_SUFFIX, embedding_function=None
            )
        else:
            try:
                catalog = self._client.get_collection(
                    name + CATALOG_SUFFIX, embedding_function=None
                )
            except NotFoundError:
                return None
        return self._repair.healthy(catalog, _unit_vectors)

    def batch_size(self) -> int:
        """The most records Chroma takes in one call."""
        return int(self._client.get_max_batch_size())

    # ------------------------------------------------------------------ for VectorRepair

    def persist_root(self) -> Path | None:
        """The folder of an embedded store; None for a Chroma server or an in-memory store."""
        settings = self._client.get_settings()
        if not settings.is_persistent or not settings.persist_directory:
            return None
        return Path(settings.persist_directory)

    def probe(self, collection: Any) -> str | None:
        """Chroma's error if reading the collection's vectors fails as damaged ones do."""
        try:
            collection.get(limit=1, include=[])  # reads the vectors' index in
        except Exception as error:
            if not _is_damage(error):
                raise
            return str(error)
        return None

    def handle(self, name: str) -> Any:
        """A fresh handle on a Chroma collection, by its name in Chroma."""
        return self._client.get_collection(name, embedding_function=None)

    def reopen(self, name: str, while_closed: Callable[[], object]) -> Any:
        """Close the embedded store, run `while_closed`, reopen; a new handle on `name`.

        Chroma keeps open indexes in memory, so their files may only change while it is closed.
        """
        root = self.persist_root()
        self._client.close()
        while_closed()
        self._client = open_chroma_client(path=root)
        return self.handle(name)

    @property
    def repaired(self) -> list[str]:
        """The collections this index has repaired, in order."""
        return list(self._repair.repaired)

    def check(self) -> list[str]:
        """Check every collection's vectors now, repairing damaged ones; return those repaired.

        One that cannot be repaired here is logged and skipped: it raises DamagedIndexError
        when used, and the others keep working.
        """
        for name in self.list_collections():
            try:
                self._collection(name)
                self._catalog(name)
            except DamagedIndexError as error:
                logger.error("%s", error)
        return self.repaired

    # ------------------------------------------------------------------ collections

    def list_collections(self) -> list[str]:
        """Names of all collections, sorted."""
        names = (c.name for c in self._client.list_collections())
        return sorted(n for n in names if not n.endswith(CATALOG_SUFFIX))

    def count(self, collection: str) -> int:
        """Number of stored chunks in a collection (raises if it does not exist)."""
        return int(self._collection(collection).count())

    def delete_collection(self, collection: str) -> None:
        """Remove a collection, its chunks and its catalogue."""
        from chromadb.errors import NotFoundError

        validate_collection_name(collection)
        try:  # a clear error if it does not exist; no vector check, they are about to go
            self._client.get_collection(collection, embedding_function=None)
        except NotFoundError:
            raise CollectionNotFoundError(collection) from None
        for name in (collection + CATALOG_SUFFIX, collection):  # catalogue first: hides all
            with contextlib.suppress(NotFoundError):
                self._client.delete_collection(name)
            self._repair.forget(name)
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
                metadatas=[_to_metadata(c) for c in part],
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
        if stale:
            target = self._collection(collection)
            ids = sorted(stale)
            for i in range(0, len(ids), self.batch_size()):
                target.delete(ids=ids[i : i + self.batch_size()])
            self._keyword.delete(collection, ids)
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
            chunks += [_to_chunk(i, text, dict(meta)) for i, text, meta in rows]
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
            current = self._current_versions(collection, {h.chunk.source for h in hits})
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
        where_sql, params = where.sql() if where else ("", [])
        wanted = k + max(4, k // 2)
        while True:
            hits = self._keyword.search(collection, question, wanted, where_sql=where_sql,
                                        params=params)  # fmt: skip
            current = self._current_versions(collection, {c.source for c, _ in hits})
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
        return [
            ScoredChunk(chunk=_to_chunk(i, doc, dict(meta)), score=1.0 - float(dist))
            for i, doc, meta, dist in rows
        ]

    # ------------------------------------------------------------------ catalogue

    def _current_versions(self, collection: str, sources: Iterable[str]) -> dict[str, str]:
        catalog = self._catalog(collection)
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
        catalog = self._catalog(collection)
        if catalog is None:
            return {}
        records = [_to_record(dict(m)) for m in catalog.get(include=["metadatas"])["metadatas"]]
        return {r.source: r for r in sorted(records, key=lambda r: r.source)}

    def put_document(self, collection: str, record: DocumentRecord) -> None:
        """Record a document version: from this moment its chunks are the visible ones."""
        self._collection(collection, create=True)
        catalog: Any = self._catalog(collection, create=True)
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
        catalog.upsert(
            ids=[_record_id(record.source)],
            embeddings=[[1.0]],
            documents=[record.source],
            metadatas=[metadata],
        )

    def remove_document(self, collection: str, source: str) -> int:
        """Remove a document: hidden at once, then its chunks deleted. Returns chunks removed."""
        catalog = self._catalog(collection)
        known = catalog is not None and catalog.get(ids=[_record_id(source)])["ids"]
        if not known:
            raise DocumentNotFoundError(collection, source)
        catalog.delete(ids=[_record_id(source)])  # type: ignore[union-attr]
        return self.delete_chunks(collection, source)
