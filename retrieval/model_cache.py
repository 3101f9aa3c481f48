"""Folders of converted or exported models in the model cache: built once, published whole."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def source_key(source: str, kind: str) -> str:
    """A key for what is built from `source` as `kind` (with its format version) that changes
    when the source changes: a local folder's files (names, sizes, modification times), or a
    hub id as written."""
    path = Path(source)
    digest = hashlib.sha256(f"{kind}:{path.resolve() if path.exists() else source}".encode())
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


# The child: this process's import path first (so `build` unpickles wherever it lives), then
# `build(staging)`; an exception goes back pickled, with its traceback as text.
_CHILD = """
import pickle, sys, traceback
paths, blob = pickle.load(sys.stdin.buffer)
sys.path[:] = paths
try:
    build, staging = pickle.loads(blob)
    build(staging)
except BaseException as error:
    with open(sys.argv[1], "wb") as out:
        try:
            pickle.dump((error, traceback.format_exc()), out)
        except Exception:
            pickle.dump((RuntimeError(repr(error)), traceback.format_exc()), out)
    sys.exit(1)
"""


class BuiltElsewhereError(Exception):
    """The traceback of an error raised in the building process (the cause of the one raised)."""


def build_apart(build: Callable[[Path], None], staging: Path) -> None:
    """`build(staging)` in a new Python process, its error raised here.

    Why: the serving process keeps only what it serves. A conversion loads the model in
    PyTorch and runs it on every core; afterwards CTranslate2 decoded at 20 tokens/s in that
    process instead of 35 (2-core Xeon, bench generation), and the loaded copies stayed in its
    memory. A plain new interpreter, not multiprocessing's spawn, which runs the caller's main
    script again. `build` must pickle (a module-level function, or a partial of one)."""
    payload = pickle.dumps((list(sys.path), pickle.dumps((build, staging))))
    with tempfile.TemporaryDirectory(prefix=".error-", dir=staging.parent) as folder:
        report = Path(folder) / "error.pickle"
        done = subprocess.run([sys.executable, "-c", _CHILD, str(report)], input=payload,
                              check=False)  # fmt: skip
        if done.returncode == 0:
            return
        if report.exists():
            error, trace = pickle.loads(report.read_bytes())
            raise error from BuiltElsewhereError(trace)
    raise RuntimeError(
        f"the process building {staging.parent} died (exit status {done.returncode}): out of "
        "memory? The log above says how far it got; free memory and try again."
    )


def publish(target: Path, marker: str, build: Callable[[Path], None], what: str) -> Path:
    """`target`, built by `build(staging)` in a staging folder beside it, in another process
    (see build_apart), unless it already holds `marker`; moved into place whole: a crash, or a
    second process building it at the same time, never leaves half a model behind. `what` it
    builds is logged, with the time taken."""
    if (target / marker).exists():
        return target
    started = time.monotonic()
    logger.info("%s into %s (once, in another process)", what, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        build_apart(build, staging)
        try:
            os.replace(staging, target)
        except OSError:  # another process published it first
            if not (target / marker).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("done in %.1f s: %s", time.monotonic() - started, what)
    return target
