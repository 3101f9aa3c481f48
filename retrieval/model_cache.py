"""Folders of converted or exported models in the model cache: built once, published whole."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
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


def publish(target: Path, marker: str, build: Callable[[Path], None], what: str) -> Path:
    """`target`, built by `build(staging)` in a staging folder beside it unless it already holds
    `marker`, and moved into place whole: a crash, or a second process building it at the same
    time, never leaves half a model behind. `what` it builds is logged, with the time taken."""
    if (target / marker).exists():
        return target
    started = time.monotonic()
    logger.info("%s into %s (once)", what, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        build(staging)
        try:
            os.replace(staging, target)
        except OSError:  # another process published it first
            if not (target / marker).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("done in %.1f s: %s", time.monotonic() - started, what)
    return target
