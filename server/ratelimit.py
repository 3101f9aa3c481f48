"""Requests per client per sliding minute, counted in SQLite under RAGQA_HOME (or the database
several servers share), so every gunicorn worker and every server shares one count per client."""

from __future__ import annotations

import math
import time
from pathlib import Path

from retrieval.database import Database, Tables, open_database

WINDOW_S = 60.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hits (client TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS hits_by_client ON hits (client, at)",
    "CREATE INDEX IF NOT EXISTS hits_by_time ON hits (at)",
)


class RateLimiter:
    """A sliding one-minute window of request times per client (a key or an address).

    The table holds only the last minute's requests (older ones are deleted as each request
    is counted), so it stays bounded however many clients call. Wall-clock times, because
    processes share it.
    """

    def __init__(self, per_minute: int, place: Path | Database) -> None:
        self._per_minute = per_minute
        # Counts, not data: a crash may lose a few, so SQLite need not sync each one.
        self._db = Tables(open_database(place, synchronous="OFF"), _SCHEMA)

    def __len__(self) -> int:
        """How many clients are tracked."""
        with self._db.transaction() as db:
            return int(db.execute("SELECT count(DISTINCT client) FROM hits").fetchone()[0])

    def allow(self, client: str, now: float | None = None) -> bool:
        """Record a request from `client`; False if it is over the limit."""
        if self._per_minute <= 0:
            return True
        now = time.time() if now is None else now
        # Count and record as one step, across processes and servers.
        with self._db.transaction(lock=f"rate {client}") as db:
            db.execute("DELETE FROM hits WHERE at <= ?", (now - WINDOW_S,))
            (count,) = db.execute(
                "SELECT count(*) FROM hits WHERE client = ?", (client,)
            ).fetchone()
            allowed = bool(count < self._per_minute)
            if allowed:
                db.execute("INSERT INTO hits (client, at) VALUES (?, ?)", (client, now))
        return allowed

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Whole seconds until `client` may call again (1 at least)."""
        now = time.time() if now is None else now
        with self._db.transaction() as db:
            row = db.execute("SELECT min(at) FROM hits WHERE client = ?", (client,)).fetchone()
        oldest = row[0] if row and row[0] is not None else now
        return max(1, math.ceil(WINDOW_S - (now - oldest)))
