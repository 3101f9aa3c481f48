"""Which files an ingest reads: folders expanded, globs applied, unsupported types set aside;
and the identity of a document (its resolved path)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from pathlib import Path

from ingest.formats import file_format
from ingest.report import FileError


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)


def discover(
    paths: Sequence[Path], *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[Path], list[FileError], list[FileError]]:
    """Expand folders recursively into files; globs match a name or a path inside the folder.

    Returns (files, missing paths, skipped files). Files named directly are always taken (and
    fail later if unreadable); in folders, hidden files are ignored and files of unsupported
    types are skipped with a reason.
    """
    files: list[Path] = []
    errors: list[FileError] = []
    skipped: list[FileError] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file()):
                relative = found.relative_to(path).as_posix()
                if any(part.startswith(".") for part in relative.split("/")):
                    continue
                if (include and not _matches(relative, include)) or _matches(relative, exclude):
                    continue
                if file_format(found) is None:
                    kind = found.suffix or "(no extension)"
                    skipped.append(FileError(str(found), f"unsupported file type {kind!r}"))
                    continue
                files.append(found)
        else:
            errors.append(FileError(str(path), "no such file or folder"))
    return files, errors, skipped


def source_id(path: Path) -> str:
    """The stable identity of a document in a collection: its absolute, resolved path."""
    return path.resolve().as_posix()


def password_for(path: Path, passwords: Mapping[str, str], default: str | None) -> str | None:
    """The password for a PDF: a passwords-file entry whose key ends the path, else the default."""
    posix = path.resolve().as_posix()
    for key, value in passwords.items():
        if posix == key or posix.endswith("/" + key.lstrip("/")):
            return value
    return default
