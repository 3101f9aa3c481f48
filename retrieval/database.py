"""Where ragqa's own tables live: SQLite files in RAGQA_HOME (the default, one machine), or one
PostgreSQL database that several ragqa servers on several machines share.

The tables (ingest jobs, API keys, feedback, rate-limit counts) are written in the SQL both
engines speak, with `?` placeholders; `Database.transaction()` yields a connection whose
`execute` takes them on either engine.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol, cast


class Cursor(Protocol):
    """What a statement returns, on either engine."""

    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """A connection inside a transaction."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor: ...


class Database(Protocol):
    """A place for tables, opened lazily; safe to share between threads and processes."""

    dialect: str  # "sqlite" or "postgresql"

    def transaction(
        self, *, write: bool = False, lock: str = ""
    ) -> AbstractContextManager[Connection]:
        """One transaction (`write`: it writes); with `lock`, serialised against every other
        transaction taking the same lock, in any process or server."""
        ...

    def create(self, statements: Sequence[str]) -> None:
        """Create tables and indexes (IF NOT EXISTS), once per process."""
        ...


class SqliteDatabase:
    """One SQLite file (WAL): every process on the machine shares it."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._synchronous = synchronous  # FULL where a crash must not lose a commit
        self._local = threading.local()  # a connection stays in the thread that opened it

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    @contextmanager
    def transaction(self, *, write: bool = False, lock: str = "") -> Iterator[Connection]:
        db = self._connection()
        # IMMEDIATE takes the file's write lock at once: writers queue up (across processes)
        # instead of failing when a read turns into a write.
        db.execute("BEGIN IMMEDIATE" if write or lock else "BEGIN")
        try:
            yield cast(Connection, db)  # sqlite3 takes any sequence of parameters
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def create(self, statements: Sequence[str]) -> None:
        with self.transaction(lock="schema") as db:
            for statement in statements:
                db.execute(statement)


class PostgresDatabase:
    """One PostgreSQL database (psycopg 3), shared by every ragqa server that names it."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self._url = url
        self._local = threading.local()
        self._opened: list[tuple[int, Any]] = []  # every thread's connection, to close them all
        weakref.finalize(self, _close_all, self._opened)

    def _connection(self) -> Any:
        import psycopg  # only deployments that name a database need it

        db = getattr(self._local, "db", None)
        if db is None or db.closed or db.broken or self._local.pid != os.getpid():
            db = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
            self._local.db, self._local.pid = db, os.getpid()
            self._opened.append((os.getpid(), db))
        return db

    def close(self) -> None:
        """Close every connection (each thread opens a new one at its next use)."""
        _close_all(self._opened)

    @contextmanager
    def transaction(self, *, write: bool = False, lock: str = "") -> Iterator[Connection]:
        db = self._connection()
        with db.transaction():
            connection = _PostgresConnection(db)
            if lock:  # held until the transaction ends, by every server on the database
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (lock,))
            yield connection

    def create(self, statements: Sequence[str]) -> None:
        # Two servers starting at once would race on CREATE ... IF NOT EXISTS: serialise them.
        with self.transaction(lock="ragqa schema") as db:
            for statement in statements:
                db.execute(statement)


def _close_all(connections: list[tuple[int, Any]]) -> None:
    while connections:
        pid, db = connections.pop()
        if pid == os.getpid():  # a forked child must not close its parent's socket
            db.close()


class _PostgresConnection:
    def __init__(self, db: Any) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor: Cursor = self._db.execute(sql.replace("?", "%s"), list(params))
        return cursor


def open_database(place: Path | Database, **sqlite_options: Any) -> Database:
    """`place` as a Database: a path is a SQLite file."""
    if isinstance(place, Path):
        return SqliteDatabase(place, **sqlite_options)
    return place


def _portable(statement: str, dialect: str) -> str:
    """A CREATE statement in the dialect: SQLite's REAL is PostgreSQL's double precision."""
    return statement.replace(" REAL", " DOUBLE PRECISION") if dialect == "postgresql" else statement


class Tables:
    """A database whose tables are created at first use (and again after a failed attempt),
    so a server starts, and answers 503, while its shared database is down."""

    def __init__(self, database: Database, statements: Sequence[str]) -> None:
        self._db = database
        self._statements = [_portable(s, database.dialect) for s in statements]
        self._ready = False
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        """The database's dialect."""
        return self._db.dialect

    def transaction(
        self, *, write: bool = False, lock: str = ""
    ) -> AbstractContextManager[Connection]:
        """A transaction on the database, its tables created first if need be."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._db.create(self._statements)
                    self._ready = True
        return self._db.transaction(write=write, lock=lock)
