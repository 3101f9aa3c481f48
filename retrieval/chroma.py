"""The Chroma store: clients, collection names, handles checked for damage (the only module
that imports chromadb)."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from retrieval.recovery import Embed, VectorRepair
from retrieval.types import Chunk, MetadataValue

# Chroma's own rule for collection names, stated so we can explain it before Chroma refuses.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_EMBEDDER_KEY = "ragqa:embedder"
_BACKEND_KEY = "ragqa:embedder_backend"  # absent: embedded by sentence-transformers' torch
# Vectors from another backend this close (cosine) to a collection's own are searched alike.
SAME_VECTORS = 0.999
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


def to_metadata(chunk: Chunk) -> dict[str, MetadataValue]:
    """A chunk's Chroma metadata: its own, plus where it comes from."""
    metadata: dict[str, MetadataValue] = {
        k: v for k, v in chunk.metadata.items() if k not in _RESERVED
    }
    metadata["source"] = chunk.source
    metadata["start"] = chunk.start
    metadata["version"] = chunk.version
    if chunk.page is not None:
        metadata["page"] = chunk.page
    return metadata


def to_chunk(chunk_id: str, text: str, metadata: dict[str, Any]) -> Chunk:
    """The chunk a Chroma record holds."""
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


def _unit_vectors(texts: Sequence[str]) -> list[list[float]]:
    return [[1.0] for _ in texts]  # the catalogue's records are found by id, never by vector


def _is_damage(error: Exception) -> bool:
    """Whether Chroma failed because a collection's HNSW files are unreadable."""
    from chromadb.errors import InternalError

    text = str(error).lower()
    return isinstance(error, InternalError) and ("hnsw" in text or "error finding id" in text)


class ChromaStore:
    """Handles on a Chroma client's collections, each checked (and if need be repaired) the
    first time this process uses it; the store a VectorRepair works on."""

    def __init__(
        self, *, client: Any, embedder_name: str, embed: Embed | None = None,
        embedder_backend: str = "torch",
    ) -> None:  # fmt: skip
        """`embed` rebuilds vectors an interrupted write damaged (without it such a collection
        raises DamagedIndexError) and checks a collection another backend embedded."""
        self._client = client
        self._embedder_name = embedder_name
        self._backend = embedder_backend
        self._embed = embed
        self._compatible: set[str] = set()  # collections of another backend, checked
        self._repair = VectorRepair(self)

    @property
    def client(self) -> Any:
        """The Chroma client (replaced when the store is reopened for a repair)."""
        return self._client

    def chunks(self, name: str, *, create: bool = False) -> Any:
        """The collection of chunks `name`, built with this store's embedder."""
        from chromadb.errors import NotFoundError

        validate_collection_name(name)
        if create:
            # embedding_function=None: we always pass our own vectors, and Chroma's default
            # function would download a model.
            collection = self._client.get_or_create_collection(
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={_EMBEDDER_KEY: self._embedder_name, _BACKEND_KEY: self._backend},
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
        collection = self._repair.healthy(collection, self._embed)
        self._check_backend(name, collection)
        return collection

    def _check_backend(self, name: str, collection: Any) -> None:
        """Refuse a collection another embedder backend built when this one's vectors of its
        own text differ from those stored (int8 against float32, say): its questions would be
        searched wrongly. Checked once per collection and process, on one stored chunk."""
        recorded = str((collection.metadata or {}).get(_BACKEND_KEY, "torch"))
        if recorded == self._backend or name in self._compatible or self._embed is None:
            return
        sample = collection.get(limit=1, include=["documents", "embeddings"])
        if not sample["ids"]:
            return
        stored = [float(x) for x in sample["embeddings"][0]]
        fresh = self._embed([sample["documents"][0]])[0]
        norms = math.sqrt(sum(x * x for x in stored)) * math.sqrt(sum(x * x for x in fresh))
        cosine = sum(a * b for a, b in zip(stored, fresh, strict=True)) / (norms or 1.0)
        if cosine < SAME_VECTORS:
            raise EmbedderMismatchError(
                f"Collection {name!r} was embedded by the {recorded!r} embedder backend; the "
                f"configured {self._backend!r} gives vectors at cosine {cosine:.4f} to its own "
                f"(below {SAME_VECTORS}), so its questions would be searched wrongly. Set "
                f"RAGQA_EMBEDDER__BACKEND={recorded} or re-ingest into a new collection."
            )
        self._compatible.add(name)

    def catalog(self, name: str, *, create: bool = False) -> Any | None:
        """The companion collection holding the catalogue of `name`; None if there is none."""
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

    def names(self) -> list[str]:
        """Names of all chunk collections, sorted."""
        names = (c.name for c in self._client.list_collections())
        return sorted(n for n in names if not n.endswith(CATALOG_SUFFIX))

    def delete(self, name: str) -> None:
        """Remove a collection and its catalogue (CollectionNotFoundError if there is none)."""
        from chromadb.errors import NotFoundError

        validate_collection_name(name)
        try:  # a clear error if it does not exist; no vector check, they are about to go
            self._client.get_collection(name, embedding_function=None)
        except NotFoundError:
            raise CollectionNotFoundError(name) from None
        for chroma_name in (name + CATALOG_SUFFIX, name):  # catalogue first: hides all
            with contextlib.suppress(NotFoundError):
                self._client.delete_collection(chroma_name)
            self._repair.forget(chroma_name)

    @property
    def repaired(self) -> list[str]:
        """The collections this store has repaired, in order."""
        return list(self._repair.repaired)

    def check(self, name: str) -> None:
        """Check a collection and its catalogue now, repairing what a crash damaged."""
        self.chunks(name)
        self.catalog(name)

    # ------------------------------------------------------------------ RepairableStore

    def batch_size(self) -> int:
        """The most records Chroma takes in one call."""
        return int(self._client.get_max_batch_size())

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
