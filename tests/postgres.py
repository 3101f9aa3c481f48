"""A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries, a fresh cluster in
a temporary folder, listening on loopback only, stopped (and its files removed) afterwards.
Skips with the reason where PostgreSQL is not installed (`make setup` installs it as root)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _binaries() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_postgres() -> Iterator[str]:
    """A started PostgreSQL server; yields the URL of its `ragqa` database."""
    binaries = _binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (as root: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="ragqa-pg-"))
    # PostgreSQL refuses to run as root: run it as Debian's postgres user then.
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("PostgreSQL cannot run as root and runuser is missing")
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    log = folder / "server.log"
    subprocess.run(
        [*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "ragqa", "--auth=trust",
         "-E", "UTF8", "--locale=C.UTF-8"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder}"
    options += " -c fsync=off -c full_page_writes=off"  # a test database: speed over safety
    subprocess.run(
        [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
         "-w", "-t", "60", "start"],
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip
    try:
        subprocess.run(
            [*as_user, str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port),
             "-U", "ragqa", "ragqa"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        yield f"postgresql://ragqa@127.0.0.1:{port}/ragqa"
    finally:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
             "stop"],
            check=False, capture_output=True, timeout=60,
        )  # fmt: skip
        time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)


def reset(url: str) -> None:
    """Empty every ragqa table (tests share one server)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        tables = [row[0] for row in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]  # fmt: skip
        for table in tables:
            db.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
