"""One home, many processes: how every ragqa process on one RAGQA_HOME shares its Chroma store.

Chroma's embedded store is not safe for several processes (each keeps its own copy of the
vector indexes in memory and writes them back: a second process can lose or corrupt what the
first wrote). So a home's store has one owner at a time, named by an exclusive lock on
`<store>.lock`:

- `ragqa serve` starts a Chroma server for the home (`chroma run` on loopback, holding the
  lock for as long as it runs; it dies with the ragqa server) and writes its port to
  `<store>-server.json`. Every gunicorn worker and every CLI command started while it runs
  talks to that server, so what one process writes the others see at their next request.
- A process alone on the home (a CLI command, a script) opens the store embedded, holding the
  lock until it closes the store or exits. Another process that needs the home meanwhile
  waits up to a bound, then fails with who holds it and what to do: never a silent
  corruption.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_held: dict[Path, int] = {}  # lock file descriptors this process holds, by store folder
_stopping = threading.Event()  # this process is exiting: its Chroma server is not restarted


class StoreBusyError(RuntimeError):
    """Another process owns the home's store and did not let go within the wait."""


def lock_path(store: Path) -> Path:
    return store.parent / f"{store.name}.lock"


def server_file(store: Path) -> Path:
    return store.parent / f"{store.name}-server.json"


def server_log(store: Path) -> Path:
    return store.parent / f"{store.name}-server.log"


def live_server(store: Path) -> int | None:
    """The port of the home's running Chroma server, if one answers."""
    try:
        info = json.loads(server_file(store).read_text())
        os.kill(int(info["pid"]), 0)  # raises if the process is gone
        port = int(info["port"])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2):
            return port
    except (OSError, ValueError, KeyError, TypeError):  # URLError is an OSError
        return None


def _owner(store: Path) -> str:
    try:
        return lock_path(store).read_text().strip() or "another process"
    except OSError:
        return "another process"


def lock_store(store: Path, *, wait_s: float, give_way_to_server: bool = True) -> int | None:
    """Own `store` (an exclusive lock, waiting up to `wait_s`); the locked descriptor, or None
    when the home's Chroma server turned up meanwhile (`give_way_to_server`): use it instead."""
    if store in _held:
        return _held[store]
    store.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(store), os.O_RDWR | os.O_CREAT, 0o600)
    deadline, told = time.monotonic() + wait_s, False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if give_way_to_server and live_server(store) is not None:
                os.close(fd)
                return None
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StoreBusyError(
                    f"The store {store} is in use by {_owner(store)}. Wait for it to finish "
                    "and try again, or run `ragqa serve` on this home: while it runs, any "
                    "number of ragqa commands may use the home at once."
                ) from None
            if not told:
                log.warning("waiting up to %.1f s for %s to release %s", wait_s, _owner(store),
                            store)  # fmt: skip
                told = True
            time.sleep(0.2)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} ({' '.join(Path(a).name for a in sys.argv[:3])})".encode(), 0)
    _held[store] = fd
    return fd


def release_store(store: Path) -> None:
    """Let go of a store this process owns (nothing if it does not)."""
    fd = _held.pop(store, None)
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def open_home_store(store: Path, *, wait_s: float) -> Any:
    """A Chroma client for the home's store: its running server's, else the embedded store
    owned by this process (see the module's docstring)."""
    import chromadb

    settings = chromadb.Settings(anonymized_telemetry=False)
    port = live_server(store)
    if port is None and lock_store(store, wait_s=wait_s) is not None:
        return chromadb.PersistentClient(path=str(store), settings=settings)
    port = port or live_server(store)
    if port is None:  # it turned up and went again
        raise StoreBusyError(f"The Chroma server of {store} stopped; start `ragqa serve` again.")
    return chromadb.HttpClient(host="127.0.0.1", port=port, settings=settings)


def _die_with_parent(parent: int) -> None:
    """SIGTERM to this process when `parent` dies, even by kill -9 (Linux; kept across exec)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before that was set
        sys.exit(1)


def keep_home_server(store: Path, *, wait_s: float) -> Callable[[], None]:
    """Start the home's Chroma server (unless one runs) and restart it on the same port if it
    dies, until this process exits; clients meanwhile get connection errors, then carry on.
    Returns what stops it (and its keeper) sooner."""
    child = start_home_server(store, wait_s=wait_s)
    if child is None:
        return lambda: None
    port = live_server(store)
    stopped = threading.Event()
    current = [child]

    def watch() -> None:
        while True:
            current[0].wait()
            if stopped.is_set() or _stopping.is_set():
                return
            log.warning("the Chroma server of %s stopped (exit %s); restarting it", store,
                        current[0].returncode)  # fmt: skip
            try:
                restarted = start_home_server(store, wait_s=wait_s, port=port)
            except StoreBusyError:
                log.exception("could not restart the Chroma server; trying again")
                time.sleep(5)
                continue
            if restarted is None:  # another process's server took the home over
                return
            current[0] = restarted

    def stop() -> None:
        stopped.set()
        _terminate(current[0])

    # This thread starts the replacements, so it lives as long as they may (see main).
    threading.Thread(target=watch, name="chroma-watch", daemon=True).start()
    return stop


def start_home_server(
    store: Path, *, wait_s: float, port: int | None = None
) -> subprocess.Popen[bytes] | None:
    """Start the home's Chroma server (on `port`, else a free one) unless one runs; it stops
    when this process exits. None when an existing one is used."""
    if live_server(store) is not None:
        return None
    store.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "retrieval.home_store", str(store), str(wait_s),
               str(os.getpid()), str(port or 0)]  # fmt: skip
    with server_log(store).open("ab") as logfile:  # the child has its own copy
        child = subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT)
    atexit.register(_stop, child)
    deadline = time.monotonic() + wait_s + 30
    while (started := live_server(store)) is None:
        if child.poll() is not None or time.monotonic() > deadline:
            _terminate(child)  # this one only: a keeper may still restart it later
            tail = server_log(store).read_text(errors="replace")[-800:]
            raise StoreBusyError(f"The Chroma server for {store} did not start:\n{tail}")
        time.sleep(0.1)
    log.info("Chroma server for %s on 127.0.0.1:%d", store, started)
    return child


def _stop(child: subprocess.Popen[bytes]) -> None:
    _stopping.set()  # this process is exiting
    _terminate(child)


def _terminate(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(store: Path, wait_s: float, parent: int, port: int) -> None:
    """Own the store, publish the port, and become `chroma run` (the lock goes with it).
    PR_SET_PDEATHSIG fires when the *thread* that started this process ends: keep_home_server
    starts replacements from a thread that lives as long as the ragqa server."""
    _die_with_parent(parent)
    fd = lock_store(store, wait_s=wait_s, give_way_to_server=False)
    assert fd is not None
    os.set_inheritable(fd, True)
    port = port or _free_port()
    temporary = server_file(store).with_suffix(".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), "port": port}))
    os.replace(temporary, server_file(store))
    chroma = Path(sys.executable).parent / "chroma"
    os.execv(chroma, [str(chroma), "run", "--path", str(store), "--host", "127.0.0.1",
                      "--port", str(port)])  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
