"""Run a parser in a separate process with a wall-clock and a memory limit.

A PDF that hangs the parser, a decompression bomb, or a crash in a native library then costs
that one file: the worker is killed (and replaced) and the file is reported; the ingest goes on.

Workers are plain `python -m ingest.isolation` processes fed over pipes, not multiprocessing
children: those re-run the caller's main script, which a library must never do.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import resource
import select
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

from ingest.loaders import LoadError

logger = logging.getLogger(__name__)
T = TypeVar("T")
_HEADER = struct.Struct("!Q")


def _write(stream: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = stream.read(size - len(data))
        if not part:
            raise EOFError
        data += part
    return data


def _read(stream: IO[bytes]) -> Any:
    (size,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    return pickle.loads(_read_exact(stream, size))


class Worker:
    """One parser process; `call` runs a function in it under the limits."""

    def __init__(self, *, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ingest.isolation", str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )  # fmt: skip

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float, **kwargs: Any) -> T:
        """fn(*args, **kwargs) in the worker; LoadError if it fails, hangs or crashes."""
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:
            raise LoadError("the parser process is not running")
        try:
            _write(stdin, (fn, args, kwargs))
            # poll, not select: select fails on descriptors above 1023 in a busy process.
            poller = select.poll()
            poller.register(stdout, select.POLLIN)
            if not poller.poll(timeout_s * 1000):
                self.kill()
                raise LoadError(f"parsing took longer than {timeout_s:g} s; the file was skipped")
            ok, value = _read(stdout)
        except (EOFError, BrokenPipeError, struct.error):
            code = self._process.wait(5)
            raise LoadError(
                f"the parser crashed (exit code {code}); the file may be malformed or need "
                f"more than {self.memory_mb} MB of memory"
            ) from None
        if not ok:
            raise value  # a LoadError built in the worker
        result: T = value
        return result

    @property
    def alive(self) -> bool:
        """Whether the process can take another file."""
        return self._process.poll() is None

    def kill(self) -> None:
        """Stop the process now."""
        if self.alive:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()


class WorkerPool:
    """Up to `size` workers shared by threads; a dead or killed worker is replaced."""

    def __init__(self, *, size: int, memory_mb: int) -> None:
        self._idle: queue.Queue[Worker | None] = queue.Queue()
        for _ in range(size):
            self._idle.put(None)  # started on first use
        self._memory_mb = memory_mb
        self._all: list[Worker] = []

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float, **kwargs: Any) -> T:
        """Run fn in an idle worker (waiting for one if all are busy)."""
        worker = self._idle.get()
        try:
            if worker is None or not worker.alive:
                worker = Worker(memory_mb=self._memory_mb)
                self._all.append(worker)
            return worker.call(fn, *args, timeout_s=timeout_s, **kwargs)
        finally:
            self._idle.put(worker if worker is not None and worker.alive else None)

    def close(self) -> None:
        """Stop every worker."""
        for worker in self._all:
            worker.kill()


@contextmanager
def worker_pool(*, size: int, memory_mb: int) -> Iterator[WorkerPool]:
    """A pool whose workers are stopped when the block ends."""
    pool = WorkerPool(size=size, memory_mb=memory_mb)
    try:
        yield pool
    finally:
        pool.close()


def run_isolated(
    fn: Callable[..., T], *args: Any, timeout_s: float, memory_mb: int, **kwargs: Any
) -> T:
    """Call fn(*args, **kwargs) in a fresh worker process (for one-off calls)."""
    worker = Worker(memory_mb=memory_mb)
    try:
        return worker.call(fn, *args, timeout_s=timeout_s, **kwargs)
    finally:
        worker.kill()


def _serve(memory_mb: int) -> None:
    """The worker's loop: read a call, run it, write (ok, result or LoadError)."""
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the channel
    while True:
        try:
            fn, args, kwargs = _read(stdin)
        except EOFError:
            return
        try:
            reply: tuple[bool, object] = (True, fn(*args, **kwargs))
        except MemoryError:
            reply = (False, LoadError(f"the parser needed more than {memory_mb} MB of memory"))
        except LoadError as error:
            reply = (False, error)
        except Exception as error:  # reported as this file's error, never fatal to the batch
            reply = (False, LoadError(f"parser failed ({type(error).__name__}): {error}"))
        try:
            _write(stdout, reply)
        except MemoryError:
            _write(stdout, (False, LoadError("the parsed text is too large to return")))


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
