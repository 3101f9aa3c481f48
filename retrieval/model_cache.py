"""Folders of converted or exported models in the model cache: built once, published whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def publish(target: Path, marker: str, build: Callable[[Path], None]) -> Path:
    """`target`, built by `build(staging)` in a staging folder beside it unless it already holds
    `marker`, and moved into place whole: a crash, or a second process building it at the same
    time, never leaves half a model behind."""
    if (target / marker).exists():
        return target
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
    return target
