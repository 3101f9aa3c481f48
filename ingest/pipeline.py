"""Ingest files into a collection: discover, load, chunk, embed only what is new, store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunking import split_pages
from ingest.loaders import LoadError, is_supported, load
from retrieval.embedder import Embedder
from retrieval.index import ChromaIndex, validate_collection_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileError:
    """A file that was skipped, and why."""

    path: str
    error: str


@dataclass(frozen=True)
class FileResult:
    """What ingesting one file did."""

    path: str
    chunks_added: int
    chunks_removed: int
    error: str | None = None


@dataclass
class IngestReport:
    """Totals over one ingest run; `errors` lists every file that was skipped."""

    files_ok: int = 0
    files_failed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    errors: list[FileError] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape printed by `ragqa ingest --json` and returned over HTTP."""
        return {
            "files_ok": self.files_ok,
            "files_failed": self.files_failed,
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "errors": [{"path": e.path, "error": e.error} for e in self.errors],
        }


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[FileError]]:
    """Expand folders recursively into supported files; report paths that cannot be used."""
    files: list[Path] = []
    errors: list[FileError] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
            files.extend(p for p in found if is_supported(p))
            skipped = [p for p in found if not is_supported(p)]
            for p in skipped:
                logger.info("skipping %s: unsupported file type", p)
        elif path.is_file():
            files.append(path)
        else:
            errors.append(FileError(str(path), "no such file or folder"))
    return files, errors


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def source_id(path: Path) -> str:
    """The stable identity of a document: its absolute, resolved path."""
    return path.resolve().as_posix()


class Ingestor:
    """Ingests files into collections of one index with one embedder."""

    def __init__(
        self,
        *,
        index: ChromaIndex,
        embedder: Embedder,
        chunk_size: int = 800,
        chunk_overlap: int = 120,
    ) -> None:
        self._index = index
        self._embedder = embedder
        self._chunk_size = chunk_size
        self._chunk_overlap = chunk_overlap

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        collection: str,
        on_file: Callable[[FileResult], None] | None = None,
    ) -> IngestReport:
        """Ingest files and folders; a bad file is reported and skipped, never fatal."""
        validate_collection_name(collection)
        files, report_errors = discover(paths)
        report = IngestReport(files_failed=len(report_errors), errors=report_errors)
        for path in files:
            result = self._ingest_file(path, collection)
            if result.error is None:
                report.files_ok += 1
                report.chunks_added += result.chunks_added
                report.chunks_removed += result.chunks_removed
            else:
                report.files_failed += 1
                report.errors.append(FileError(result.path, result.error))
            if on_file is not None:
                on_file(result)
        return report

    def _ingest_file(self, path: Path, collection: str) -> FileResult:
        source = source_id(path)
        try:
            pages = load(path, source=source)
        except LoadError as error:
            logger.warning("skipping %s: %s", path, error)
            return FileResult(str(path), 0, 0, error=str(error))
        chunks = split_pages(pages, chunk_size=self._chunk_size, chunk_overlap=self._chunk_overlap)
        if not chunks:
            logger.warning("skipping %s: no text", path)
            return FileResult(str(path), 0, 0, error="the file contains no text")
        ids = {c.id for c in chunks}
        # Content-hash ids: chunks already stored are neither re-embedded nor duplicated.
        known = self._index.existing_ids(collection, ids)
        fresh = [c for c in chunks if c.id not in known]
        fresh = list({c.id: c for c in fresh}.values())
        if fresh:
            vectors = self._embedder.embed_documents([c.text for c in fresh])
            self._index.upsert(collection, fresh, vectors)
        # Chunks of an earlier version of this file go only after the new ones are stored.
        stale = self._index.ids_for_source(collection, source) - ids
        self._index.delete_ids(collection, stale)
        logger.info("%s: %d chunks added, %d removed", path, len(fresh), len(stale))
        return FileResult(str(path), len(fresh), len(stale))
