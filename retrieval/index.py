"""The vector index: named Chroma collections of chunks (the only module that imports chromadb)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from retrieval.types import Chunk, MetadataValue, ScoredChunk

logger = logging.getLogger(__name__)

# Chroma's own rule for collection names, stated so we can explain it before Chroma refuses.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_EMBEDDER_KEY = "ragqa:embedder"
_RESERVED = {"source", "page", "start"}


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


class EmbedderMismatchError(Exception):
    """The collection was built with a different embedding model than the one configured."""


class InvalidCollectionNameError(ValueError):
    """A collection name that Chroma would refuse."""


def validate_collection_name(name: str) -> str:
    """Return `name` if it is a valid collection name, else raise with the rule spelled out."""
    if not _NAME.match(name) or ".." in name:
        raise InvalidCollectionNameError(
            f"Invalid collection name {name!r}: use 3-512 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit."
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


def _to_metadata(chunk: Chunk) -> dict[str, MetadataValue]:
    metadata: dict[str, MetadataValue] = {
        k: v for k, v in chunk.metadata.items() if k not in _RESERVED
    }
    metadata["source"] = chunk.source
    metadata["start"] = chunk.start
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
        metadata=extra,
    )


class ChromaIndex:
    """Chunks and their vectors in named collections; one embedding model per collection."""

    def __init__(self, *, client: Any, embedder_name: str) -> None:
        self._client = client
        self._embedder_name = embedder_name

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
        return collection

    def list_collections(self) -> list[str]:
        """Names of all collections, sorted."""
        return sorted(c.name for c in self._client.list_collections())

    def count(self, collection: str) -> int:
        """Number of chunks in a collection (raises if it does not exist)."""
        return int(self._collection(collection).count())

    def upsert(
        self, collection: str, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]
    ) -> None:
        """Insert or replace chunks with their vectors, in batches Chroma accepts."""
        if len(chunks) != len(embeddings):
            raise ValueError(f"{len(chunks)} chunks but {len(embeddings)} embeddings")
        target = self._collection(collection, create=True)
        batch = int(self._client.get_max_batch_size())
        for i in range(0, len(chunks), batch):
            part = chunks[i : i + batch]
            target.upsert(
                ids=[c.id for c in part],
                documents=[c.text for c in part],
                metadatas=[_to_metadata(c) for c in part],
                embeddings=[list(e) for e in embeddings[i : i + batch]],
            )

    def existing_ids(self, collection: str, ids: Iterable[str]) -> set[str]:
        """The subset of `ids` already stored (empty if the collection does not exist yet)."""
        wanted = list(ids)
        try:
            target = self._collection(collection)
        except CollectionNotFoundError:
            return set()
        found: set[str] = set()
        batch = int(self._client.get_max_batch_size())
        for i in range(0, len(wanted), batch):
            found.update(target.get(ids=wanted[i : i + batch], include=[])["ids"])
        return found

    def ids_for_source(self, collection: str, source: str) -> set[str]:
        """Ids of every chunk that came from `source`."""
        try:
            target = self._collection(collection)
        except CollectionNotFoundError:
            return set()
        return set(target.get(where={"source": source}, include=[])["ids"])

    def delete_ids(self, collection: str, ids: Iterable[str]) -> None:
        """Remove chunks by id."""
        wanted = list(ids)
        if not wanted:
            return
        target = self._collection(collection)
        batch = int(self._client.get_max_batch_size())
        for i in range(0, len(wanted), batch):
            target.delete(ids=wanted[i : i + batch])

    def query(self, collection: str, embedding: Sequence[float], k: int) -> list[ScoredChunk]:
        """The `k` chunks closest to `embedding`, best first, scored by cosine similarity."""
        target = self._collection(collection)
        if target.count() == 0:
            raise CollectionNotFoundError(collection, empty=True)
        result = target.query(
            query_embeddings=[list(embedding)],
            n_results=k,
            include=["documents", "metadatas", "distances"],
        )
        hits = zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            strict=True,
        )
        return [
            ScoredChunk(chunk=_to_chunk(i, doc, dict(meta)), score=1.0 - float(dist))
            for i, doc, meta, dist in hits
        ]
