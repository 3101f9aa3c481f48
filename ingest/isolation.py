"""Run a parser in a separate process with a wall-clock and a memory limit.

A PDF that hangs the parser, a decompression bomb, or a crash in a native library then costs
that one file: the child is killed and the file is reported, the ingest goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from ingest.loaders import LoadError

logger = logging.getLogger(__name__)
T = TypeVar("T")

_context: Any = None


def _get_context() -> Any:
    """A forkserver context that has pypdf loaded, so each child starts in milliseconds."""
    global _context  # noqa: PLW0603  (one forkserver per process, started on first use)
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["ingest.loaders", "pypdf"])
    return _context


def _child(conn: Connection, memory_mb: int, fn: Callable[..., Any], args: tuple[Any, ...],
           kwargs: dict[str, Any]) -> None:  # fmt: skip
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        conn.send((True, fn(*args, **kwargs)))
    except MemoryError:
        conn.send((False, LoadError(f"the parser needed more than {memory_mb} MB of memory")))
    except LoadError as error:
        conn.send((False, error))
    except Exception as error:  # reported as this file's error, never fatal to the batch
        conn.send((False, LoadError(f"parser failed ({type(error).__name__}): {error}")))
    finally:
        conn.close()


def run_isolated(
    fn: Callable[..., T], *args: Any, timeout_s: float, memory_mb: int, **kwargs: Any
) -> T:
    """Call fn(*args, **kwargs) in a child process; LoadError if it fails, hangs or blows up."""
    context = _get_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(sender, memory_mb, fn, args, kwargs), daemon=True
    )
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise LoadError(f"parsing took longer than {timeout_s:g} s; the file was skipped")
        ok, value = receiver.recv()
    except EOFError:
        process.join(5)
        raise LoadError(
            f"the parser crashed (exit code {process.exitcode}); the file may be malformed "
            f"or need more than {memory_mb} MB of memory"
        ) from None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(5)
    if not ok:
        raise value  # a LoadError built in the child
    result: T = value
    return result
