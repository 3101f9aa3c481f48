"""A full disk under the store, told apart from other write failures so the user learns what
to do (Chroma and SQLite say "database or disk is full", or fail a compaction, or raise
ENOSPC)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

LOW_SPACE_BYTES = 1_000_000  # below this, a failed write is taken for a full disk


class StoreFullError(RuntimeError):
    """The disk holding the store is full; what was being written was not published."""


def disk_full(error: BaseException, folder: Path | None) -> bool:
    """Whether `error`, raised while writing to the store in `folder`, means a full disk."""
    text = str(error).lower()
    if getattr(error, "errno", None) == errno.ENOSPC or "disk is full" in text:
        return True
    if "no space left" in text:
        return True
    return folder is not None and folder.exists() and free_bytes(folder) < LOW_SPACE_BYTES


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def store_full(folder: Path | None, what: str) -> StoreFullError:
    """The error to raise: where, how much is left, and that nothing was published."""
    where = f"the disk holding {folder}" if folder else "the Chroma server's disk"
    left = f" ({free_bytes(folder) // 1024} KiB left)" if folder and folder.exists() else ""
    return StoreFullError(
        f"{where[0].upper()}{where[1:]} is full{left}: {what} was not published and the "
        "collection is as it was. Free some space, then ingest it again."
    )
