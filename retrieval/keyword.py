"""The keyword side of hybrid search: BM25 over chunk text with SQLite FTS5.

Persisted in one SQLite file, updated incrementally with the vector index (same chunk ids and
versions), one table per collection. Porter stemming, Unicode-aware, diacritics folded.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from retrieval.filters import SearchFilter
from retrieval.types import Chunk

_TERM = re.compile(r"\w+", re.UNICODE)
# Words too common to help ranking; BM25's IDF mostly handles them, but dropping them keeps
# OR-queries short and fast.
_STOP_WORDS = (
    "a an and are as at be by for from has have how i in is it its of on or that the this to "
    "was what when where which who why will with do does did can you your"
)
_STOP = frozenset(_STOP_WORDS.split())


def _table(collection: str) -> str:
    return "kw2_" + hashlib.sha256(collection.encode("utf-8")).hexdigest()[:24]


def query_terms(text: str) -> list[str]:
    """The distinct search terms of a question, in order, without stop words."""
    seen: list[str] = []
    for term in _TERM.findall(text.lower()):
        if term not in _STOP and term not in seen:
            seen.append(term)
    return seen


class KeywordIndex:
    """BM25 keyword search per collection; SQL WHERE clauses are the filters."""

    def __init__(self, *, path: Path | None = None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Other processes on the home write too (a CLI ingest beside the server): wait for
        # their transactions rather than fail with "database is locked".
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path), check_same_thread=False,
            isolation_level=None, timeout=120,
        )  # fmt: skip
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()

    def _ensure(self, collection: str) -> str:
        table = _table(collection)
        self._db.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5("
            "text, chunk_id UNINDEXED, source UNINDEXED, version UNINDEXED, page UNINDEXED, "
            "start UNINDEXED, section UNINDEXED, metadata UNINDEXED, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        # FTS5 cannot index its UNINDEXED columns: this table finds a chunk's row by id fast.
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {table}_ids (chunk_id TEXT PRIMARY KEY, row INTEGER)"
        )
        return table

    def _delete_ids(self, table: str, ids: Sequence[str]) -> None:
        for chunk_id in ids:
            found = self._db.execute(
                f"SELECT row FROM {table}_ids WHERE chunk_id = ?", (chunk_id,)
            ).fetchone()
            if found is not None:
                self._db.execute(f"DELETE FROM {table} WHERE rowid = ?", found)
                self._db.execute(f"DELETE FROM {table}_ids WHERE chunk_id = ?", (chunk_id,))

    def _exists(self, collection: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = ?", (_table(collection),)
        ).fetchone()
        return row is not None

    def add(self, collection: str, chunks: Sequence[Chunk]) -> None:
        """Insert chunks (replacing any stored with the same id) in one transaction."""
        with self._lock:
            table = self._ensure(collection)
            self._db.execute("BEGIN IMMEDIATE")  # writers queue up, across processes too
            try:
                self._delete_ids(table, [c.id for c in chunks])
                self._insert(table, chunks)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _insert(self, table: str, chunks: Sequence[Chunk]) -> None:
        for c in chunks:
            cursor = self._db.execute(
                f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (c.text, c.id, c.source, c.version, c.page, c.start,
                 c.metadata.get("section"), json.dumps(dict(c.metadata))),
            )  # fmt: skip
            self._db.execute(f"INSERT INTO {table}_ids VALUES (?, ?)", (c.id, cursor.lastrowid))

    def delete(self, collection: str, ids: Iterable[str]) -> None:
        """Remove chunks by id."""
        with self._lock:
            if self._exists(collection):
                table = _table(collection)
                self._db.execute("BEGIN IMMEDIATE")  # writers queue up, across processes too
                try:
                    self._delete_ids(table, list(ids))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def replace(self, collection: str, chunks: Sequence[Chunk]) -> None:
        """Rebuild a collection's index from `chunks`, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # writers queue up, across processes too
            try:
                self._db.execute(f"DROP TABLE IF EXISTS {_table(collection)}")
                self._db.execute(f"DROP TABLE IF EXISTS {_table(collection)}_ids")
                table = self._ensure(collection)
                self._insert(table, chunks)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def is_empty(self, collection: str) -> bool:
        """True when nothing is indexed for the collection (cheap: no count)."""
        with self._lock:
            if not self._exists(collection):
                return True
            found = self._db.execute(f"SELECT 1 FROM {_table(collection)}_ids LIMIT 1").fetchone()
            return found is None

    def drop(self, collection: str) -> None:
        """Forget a collection."""
        with self._lock:
            self._db.execute(f"DROP TABLE IF EXISTS {_table(collection)}")
            self._db.execute(f"DROP TABLE IF EXISTS {_table(collection)}_ids")

    def count(self, collection: str) -> int:
        """Number of chunks indexed for a collection."""
        with self._lock:
            if not self._exists(collection):
                return 0
            (n,) = self._db.execute(f"SELECT count(*) FROM {_table(collection)}").fetchone()
            return int(n)

    def rows(self, collection: str) -> list[tuple[str, str, str]]:
        """(chunk id, source, version) of every indexed chunk."""
        with self._lock:
            if not self._exists(collection):
                return []
            table = _table(collection)
            return list(self._db.execute(f"SELECT chunk_id, source, version FROM {table}"))

    def search(
        self,
        collection: str,
        question: str,
        k: int,
        *,
        where: SearchFilter | None = None,
    ) -> list[tuple[Chunk, float]]:
        """Up to k chunks ranked by BM25 (the score is positive: higher is better)."""
        where_sql, params = where.sql() if where else ("", [])
        terms = query_terms(question)
        with self._lock:
            if not terms or not self._exists(collection):
                return []
            table = _table(collection)
            match = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
            rows = self._db.execute(
                f"SELECT text, chunk_id, source, version, page, start, metadata, bm25({table}) "
                f"FROM {table} WHERE {table} MATCH ? {where_sql} ORDER BY bm25({table}) LIMIT ?",
                [match, *params, k],
            ).fetchall()
        return [(row_chunk(row), -float(row[7])) for row in rows]


def row_chunk(row: Sequence[Any]) -> Chunk:
    """The chunk of a row (text, chunk_id, source, version, page, start, metadata JSON, ...)."""
    text, chunk_id, source, version, page, start, metadata = row[:7]
    extra: Mapping[str, Any] = json.loads(metadata) if metadata else {}
    return Chunk(
        id=chunk_id, text=text, source=source, page=int(page) if page is not None else None,
        version=version, start=int(start or 0), metadata=dict(extra),
    )  # fmt: skip
