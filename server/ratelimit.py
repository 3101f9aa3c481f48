"""Requests per client per sliding minute, counted in SQLite under RAGQA_HOME so that every
gunicorn worker, and every `ragqa serve` on the same home, shares one count per client."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from pathlib import Path

WINDOW_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hits (client TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS hits_by_client ON hits (client, at);
CREATE INDEX IF NOT EXISTS hits_by_time ON hits (at);
"""


class RateLimiter:
    """A sliding one-minute window of request times per client (a key or an address).

    The table holds only the last minute's requests (older ones are deleted as each request
    is counted), so it stays bounded however many clients call. Wall-clock times, because
    processes share it.
    """

    def __init__(self, per_minute: int, path: Path) -> None:
        self._per_minute = per_minute
        self._path = path
        self._local = threading.local()  # sqlite connections stay in the thread that made them

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # counts, not data: a crash may lose a few
            db.executescript(_SCHEMA)
            self._local.db = db
        return db

    def __len__(self) -> int:
        """How many clients are tracked."""
        return int(self._db().execute("SELECT count(DISTINCT client) FROM hits").fetchone()[0])

    def allow(self, client: str, now: float | None = None) -> bool:
        """Record a request from `client`; False if it is over the limit."""
        if self._per_minute <= 0:
            return True
        now = time.time() if now is None else now
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # count and record as one step across processes
        try:
            db.execute("DELETE FROM hits WHERE at <= ?", (now - WINDOW_S,))
            (count,) = db.execute(
                "SELECT count(*) FROM hits WHERE client = ?", (client,)
            ).fetchone()
            allowed = bool(count < self._per_minute)
            if allowed:
                db.execute("INSERT INTO hits (client, at) VALUES (?, ?)", (client, now))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return allowed

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Whole seconds until `client` may call again (1 at least)."""
        now = time.time() if now is None else now
        row = self._db().execute("SELECT min(at) FROM hits WHERE client = ?", (client,)).fetchone()
        oldest = row[0] if row and row[0] is not None else now
        return max(1, math.ceil(WINDOW_S - (now - oldest)))
