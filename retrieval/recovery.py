"""Files of the repair of a collection whose vectors an interrupted write left unreadable.

Chroma's embedded store keeps every record's id, text and metadata in SQLite (crash safe) and
the vectors in an HNSW index, in a folder named after the collection's vector segment. Chroma
1.5 rewrites those files in place, so a kill -9 at the wrong moment can leave them out of step
with SQLite, and every later read fails ("Failed to apply logs to the hnsw segment writer").
Only the vectors are lost, and they are derived data: the repair sets the folder aside (Chroma
then starts an empty index and replays what its log still holds) and re-embeds every record.
A marker file, written first and removed last, makes an interrupted repair resume.

`VectorRepair` decides and keeps track; a `RepairableStore` (retrieval.chroma's ChromaStore)
makes the Chroma calls, and the functions here handle Chroma's files (so this module does not
import chromadb, nor anything of ours but this protocol).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)
Embed = Callable[[Sequence[str]], list[list[float]]]

REPAIR_FOLDER = "ragqa_repair"
# header.bin starts with Chroma's persistence version, then hnswlib's offsetLevel0,
# max_elements, cur_element_count, size_data_per_element, label_offset and offsetData.
_HEADER = struct.Struct("<i6Q")


def _marker(root: Path, name: str) -> Path:
    return root / REPAIR_FOLDER / f"{name}.json"


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def repair_pending(root: Path, name: str) -> bool:
    """Whether a repair of collection `name` was started and has not finished."""
    return _marker(root, name).is_file()


def mark_repair(root: Path, name: str) -> None:
    """Record, durably, that collection `name` is being repaired."""
    marker = _marker(root, name)
    marker.parent.mkdir(exist_ok=True)
    if marker.is_file():
        return
    partial = marker.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        json.dump({"collection": name, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, marker)
    _sync_folder(marker.parent)


def vector_folder(root: Path, collection_id: str) -> Path | None:
    """The folder of the collection's HNSW index, looked up read-only in Chroma's SQLite."""
    database = (root / "chroma.sqlite3").resolve()
    connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        row = connection.execute(
            "SELECT id FROM segments WHERE collection = ? AND scope = 'VECTOR'", (collection_id,)
        ).fetchone()
    finally:
        connection.close()
    return root / str(row[0]) if row else None


def damage_in(folder: Path) -> str | None:
    """What is cut short in the HNSW files saved in `folder`, or None if they look whole."""
    header = folder / "header.bin"
    if not header.is_file():
        return None  # nothing saved yet
    raw = header.read_bytes()
    if len(raw) < _HEADER.size:
        return "header.bin is cut short"
    count, per_element = _HEADER.unpack_from(raw)[3:5]
    if count == 0:
        return None
    if not (folder / "index_metadata.pickle").is_file():
        return f"index_metadata.pickle is missing for {count} saved vectors"
    expected = {"data_level0.bin": count * per_element, "length.bin": count * 4}
    for name, size in expected.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size < size:
            return f"{name} is cut short: {count} vectors need {size} bytes"
    return None


def set_aside(root: Path, name: str, folder: Path) -> bool:
    """Move the damaged index folder into the repair folder; False if it is already gone.

    Only call this with every Chroma client of the store closed: Chroma keeps open indexes in
    memory and would write the damaged one back.
    """
    if not folder.is_dir():
        return False
    target = root / REPAIR_FOLDER / f"{name}.{folder.name}.damaged"
    shutil.rmtree(target, ignore_errors=True)
    os.replace(folder, target)
    _sync_folder(root)
    return True


def finish_repair(root: Path, name: str) -> None:
    """Drop what the repair of `name` set aside, then its marker (the repair is done)."""
    repairs = root / REPAIR_FOLDER
    for damaged in repairs.glob(f"{name}.*.damaged"):
        segment = damaged.name[len(name) + 1 : -len(".damaged")]
        if "." not in segment:  # not the folder of a collection named "{name}.something"
            shutil.rmtree(damaged, ignore_errors=True)
    _marker(root, name).unlink(missing_ok=True)
    _sync_folder(repairs)
    if not any(repairs.iterdir()):
        repairs.rmdir()


def rebuild_vectors(collection: Any, embed: Embed, batch: int) -> int:
    """Embed every record of a Chroma collection again and write the vectors back.

    Returns how many; raises (Chroma's error) if a vector does not read back afterwards.
    Logs progress about every tenth: it takes about as long as embedding them did at ingest.
    """
    offset, ids = 0, []
    while found := collection.get(include=[], limit=batch, offset=offset)["ids"]:
        ids += found
        offset += len(found)
    done, report = 0, len(ids) // 10
    for i in range(0, len(ids), batch):
        part = collection.get(ids=ids[i : i + batch], include=["documents", "metadatas"])
        texts = [text or "" for text in part["documents"]]
        vectors: list[list[float]] = []
        for j in range(0, len(texts), 256):
            vectors += embed(texts[j : j + 256])
            done += len(texts[j : j + 256])
            if done >= report:
                logger.warning("re-embedded %d of %d records", done, len(ids))
                report += max(1, len(ids) // 10)
        collection.upsert(ids=part["ids"], documents=texts, metadatas=part["metadatas"],
                          embeddings=vectors)  # fmt: skip
    for i in range(0, len(ids), batch):
        collection.get(ids=ids[i : i + batch], include=["embeddings"])
    return len(ids)


class DamagedIndexError(Exception):
    """A collection's vectors cannot be read, and cannot be rebuilt here."""


class RepairableStore(Protocol):
    """The Chroma calls a repair needs."""

    def batch_size(self) -> int:
        """The most records Chroma takes in one call."""
        ...

    def persist_root(self) -> Path | None:
        """The folder of an embedded store; None for a server or an in-memory store."""
        ...

    def probe(self, collection: Any) -> str | None:
        """Chroma's error if reading the collection's vectors fails as damaged ones do."""
        ...

    def handle(self, name: str) -> Any:
        """A fresh handle on a Chroma collection, by its name in Chroma."""
        ...

    def reopen(self, name: str, while_closed: Callable[[], object]) -> Any:
        """Close the store, run `while_closed`, reopen; a new handle on `name`."""
        ...


class VectorRepair:
    """Checks each collection's vectors the first time this process uses it, and rebuilds those
    an interrupted write damaged. Thread-safe; owned by the store it calls."""

    def __init__(self, index: RepairableStore) -> None:
        self._index = index
        self._checked: set[str] = set()
        self._unrepaired: dict[str, str] = {}  # damaged collections, and why they stay so
        self._lock = threading.RLock()
        self.repaired: list[str] = []

    def healthy(self, collection: Any, embed: Embed | None) -> Any:
        """The collection, once checked (and if need be repaired) in this process."""
        name = collection.name
        if name in self._checked:
            return collection
        if name in self._unrepaired:  # once failed, Chroma's next read may "work"
            raise DamagedIndexError(self._unrepaired[name])
        with self._lock:
            if name in self._checked:  # another thread checked it meanwhile
                return self._index.handle(name)
            collection = self._repaired(collection, embed)
            self._checked.add(name)
        return collection

    def forget(self, name: str) -> None:
        """The collection was deleted: forget its check, and any repair of it."""
        self._checked.discard(name)
        self._unrepaired.pop(name, None)
        root = self._index.persist_root()
        if root is not None and repair_pending(root, name):
            finish_repair(root, name)

    def _repaired(self, collection: Any, embed: Embed | None) -> Any:
        name, root = collection.name, self._index.persist_root()
        folder = vector_folder(root, str(collection.id)) if root is not None else None
        pending = root is not None and repair_pending(root, name)
        # Files cut short are caught before Chroma reads them: it reads past their end and
        # can crash the process.
        failure = (damage_in(folder) if folder is not None else None) or self._index.probe(
            collection
        )
        if failure is None and not pending:
            return collection
        damaged, failure = failure is not None, failure or "a repair of it was interrupted"
        if root is None or embed is None:
            where = "a Chroma server" if root is None else "this store without an embedder"
            self._unrepaired[name] = _unrepairable(name, failure, where)
            raise DamagedIndexError(self._unrepaired[name])
        logger.warning(
            "The vector index of collection %r is damaged (%s): rebuilding it from the stored "
            "chunks, which takes about as long as embedding them took at ingest",
            name,
            failure,
        )
        mark_repair(root, name)
        if damaged:
            collection = self._without_damaged_files(collection, root, folder)
        count = rebuild_vectors(collection, embed, self._index.batch_size())
        finish_repair(root, name)
        logger.warning("Rebuilt the vectors of %d records of collection %r", count, name)
        self.repaired.append(name)
        return collection

    def _without_damaged_files(self, collection: Any, root: Path, folder: Path | None) -> Any:
        """Set the damaged folder aside with the store closed: Chroma starts a new index."""
        name = collection.name
        if folder is not None and folder.is_dir():
            collection = self._index.reopen(name, lambda: set_aside(root, name, folder))
        failure = self._index.probe(collection)
        if failure is not None:
            raise DamagedIndexError(
                f"The vector index of collection {name!r} is still damaged after setting it "
                f"aside ({failure}): another Chroma client in this process holds the store "
                f"open. Restart ragqa to finish the repair."
            )
        return collection


def _unrepairable(name: str, failure: str, where: str) -> str:
    return (
        f"The vector index of collection {name!r} is damaged ({failure}), probably by an "
        f"interrupted write, and cannot be rebuilt from {where}. Open the store with `ragqa "
        f"serve` or `ragqa ingest` on the machine that holds it, or delete the collection and "
        f"ingest its documents again."
    )
