"""API keys: stored hashed (in RAGQA_HOME, or the database servers share), each with a role
and the collections it may use. The secret is shown once, when the key is created; only its
SHA-256 is kept (the secret is 256 random bits, so a fast hash is as safe as a slow one and
costs microseconds).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from retrieval.database import Database, Tables, open_database

ROLES = ("reader", "writer", "admin")
# What each role may do: read (ask, search, list), write (ingest, delete documents), admin.
PERMISSIONS = {"reader": {"read"}, "writer": {"read", "write"}, "admin": {"read", "write", "admin"}}
PREFIX = "rqk"


class KeyStoreError(Exception):
    """A key that cannot be created or revoked; the message says why."""


class ForbiddenError(PermissionError):
    """The caller's key may not do this, or not in this collection."""


@dataclass(frozen=True)
class ApiKey:
    """A caller's key: who it is for, what it may do, and where (no collections: all)."""

    id: str
    name: str
    role: str
    collections: tuple[str, ...] = ()
    created_at: str = ""
    revoked_at: str | None = None

    def may(self, permission: str) -> bool:
        """Whether the role grants `permission` (read, write or admin)."""
        return permission in PERMISSIONS[self.role]

    def sees(self, collection: str) -> bool:
        """Whether the key may use `collection`."""
        return not self.collections or collection in self.collections

    def to_dict(self) -> dict[str, object]:
        """JSON shape (never the secret)."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "collections": list(self.collections) or "all",
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


# The bootstrap key (RAGQA_SERVER__API_KEY), and anyone when no key is required.
ADMIN = ApiKey(id="admin", name="RAGQA_SERVER__API_KEY", role="admin")
OPEN = ApiKey(id="anonymous", name="no key required", role="admin")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class KeyStore:
    """API keys in `keys.sqlite` of RAGQA_HOME or the shared database; safe to share between
    threads, processes and servers."""

    def __init__(self, place: Path | Database) -> None:
        """`place`: a SQLite file, or the database several servers share."""
        self._db = Tables(
            open_database(place),
            [
                "CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                "role TEXT NOT NULL, collections TEXT NOT NULL, digest TEXT NOT NULL, "
                "created_at TEXT NOT NULL, revoked_at TEXT)"
            ],
        )

    def create(
        self, *, name: str, role: str, collections: Sequence[str] = ()
    ) -> tuple[ApiKey, str]:
        """A new key and its secret, `rqk_<id>_<token>` (shown once, stored as a hash)."""
        if role not in ROLES:
            raise KeyStoreError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
        key = ApiKey(
            id=secrets.token_hex(6),
            name=name,
            role=role,
            collections=tuple(sorted(set(collections))),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        token = secrets.token_urlsafe(32)
        with self._db.transaction(write=True) as db:
            db.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key.id, name, role, json.dumps(key.collections), _digest(token), key.created_at),
            )
        return key, f"{PREFIX}_{key.id}_{token}"

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT id, name, role, collections, created_at, revoked_at FROM keys "
                "ORDER BY created_at, id"
            ).fetchall()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key at once; raise if there is no such key."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db.transaction(write=True) as db:
            found = db.execute(
                "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (now, key_id)
            )
            if found.rowcount == 0:
                raise KeyStoreError(f"No key {key_id!r}; `ragqa keys list` shows them.")
        return next(k for k in self.list() if k.id == key_id)

    def required(self) -> bool:
        """Whether callers need a key: once one has been created, even if all are revoked
        since (revoking the last key must not open the server to everyone)."""
        with self._db.transaction() as db:
            return db.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is not None

    def verify(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is, or None."""
        prefix, _, rest = secret.partition("_")
        key_id, _, token = rest.partition("_")
        if prefix != PREFIX or not key_id or not token:
            return None
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT id, name, role, collections, created_at, revoked_at, digest FROM keys "
                "WHERE id = ?",
                (key_id,),
            ).fetchone()
        if row is None or row[5] is not None:
            return None
        return _key(row[:6]) if hmac.compare_digest(row[6], _digest(token)) else None


def _key(row: Sequence[object]) -> ApiKey:
    key_id, name, role, collections, created_at, revoked_at = row
    return ApiKey(
        id=str(key_id),
        name=str(name),
        role=str(role),
        collections=tuple(json.loads(str(collections))),
        created_at=str(created_at),
        revoked_at=None if revoked_at is None else str(revoked_at),
    )
