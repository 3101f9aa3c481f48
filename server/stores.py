"""The stores a server opens, from settings: the Chroma client (a Chroma server's, or the
home's own store), the keyword index, and where ragqa's own tables live (SQLite files in the
home, or the PostgreSQL database several servers share)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from retrieval.chroma import open_chroma_client
from retrieval.database import Database, PostgresDatabase
from retrieval.home_store import open_home_store, release_store
from retrieval.keyword import KeywordIndex
from retrieval.keyword_pg import PostgresKeywordIndex
from server.settings import Settings


def open_store_client(settings: Settings) -> Any:
    """A client of the configured Chroma server, or of the home's store (see
    retrieval.home_store: shared with the other processes on the home)."""
    c = settings.chroma
    if c.host:
        return open_chroma_client(host=c.host, port=c.port, ssl=c.ssl)
    return open_home_store(settings.chroma_path, wait_s=c.lock_timeout_s)


def close_store_client(client: Any, settings: Settings) -> None:
    """Close a client from open_store_client and let go of the home's store."""
    # chromadb 1.5.9's HTTP client (and its admin client) keep their connection pools open
    # after close(): close them too.
    owners = (client, getattr(client, "_admin_client", None))
    sessions = [getattr(getattr(o, "_server", None), "_session", None) for o in owners]
    with contextlib.suppress(Exception):
        client.close()
    for session in sessions:
        if session is not None:
            session.close()


def release_home_store(settings: Settings) -> None:
    """Let another process own the home's embedded store (nothing with a Chroma server)."""
    if not settings.chroma.host:
        release_store(settings.chroma_path)


def open_shared_database(settings: Settings) -> PostgresDatabase | None:
    """The database several servers share, if one is configured."""
    url = settings.database.url
    return None if url is None else PostgresDatabase(url.get_secret_value())


def keyword_index(
    settings: Settings, database: Database | None
) -> KeywordIndex | PostgresKeywordIndex:
    """The keyword index: in the shared database if there is one, else in the home."""
    if isinstance(database, PostgresDatabase):
        return PostgresKeywordIndex(database)
    return KeywordIndex(path=settings.home / "keyword.sqlite")


def table_place(path: Path, database: Database | None) -> Path | Database:
    """Where a table lives: the SQLite file `path`, or the shared database."""
    return path if database is None else database
