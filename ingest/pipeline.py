"""Ingest files into a collection: discover, parse (overlapped), chunk, embed what is new, store.

Each document is stored as a new version beside the old one and made visible by one catalogue
update, then the old version is deleted: a crash at any point leaves either the old or the new
version searchable, and running the same ingest again finishes the job without duplicates.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from ingest.chunking import split_pages
from ingest.isolation import WorkerPool, worker_pool
from ingest.loaders import LoadError, Page, file_format, load, load_pdf, read_bytes
from retrieval.chroma import validate_collection_name
from retrieval.embedder import Embedder
from retrieval.index import ChromaIndex
from retrieval.types import Chunk, DocumentRecord

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class FileError:
    """A file that was skipped, and why."""

    path: str
    error: str


@dataclass(frozen=True)
class FileResult:
    """What ingesting one file did."""

    path: str
    chunks_added: int = 0
    chunks_removed: int = 0
    unchanged: bool = False
    error: str | None = None


@dataclass
class IngestReport:
    """Totals over one ingest run; `errors` lists every file that was skipped."""

    files_ok: int = 0
    files_failed: int = 0
    files_unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    errors: list[FileError] = field(default_factory=list)
    skipped: list[FileError] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        """Count one file's result."""
        if result.error is not None:
            self.files_failed += 1
            self.errors.append(FileError(result.path, result.error))
            return
        self.files_ok += 1
        self.files_unchanged += result.unchanged
        self.chunks_added += result.chunks_added
        self.chunks_removed += result.chunks_removed

    def to_dict(self) -> dict[str, object]:
        """The JSON shape printed by `ragqa ingest --json` and returned over HTTP."""
        return {
            "files_ok": self.files_ok,
            "files_failed": self.files_failed,
            "files_unchanged": self.files_unchanged,
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "errors": [{"path": e.path, "error": e.error} for e in self.errors],
            "files_skipped": len(self.skipped),
            "skipped": [{"path": e.path, "reason": e.error} for e in self.skipped],
        }


class IngestProgress(Protocol):
    """Receives progress as files are ingested (a terminal bar, an HTTP job)."""

    def start(self, total_files: int) -> None:
        """The number of files about to be ingested."""

    def file_done(self, result: FileResult) -> None:
        """One file finished (ok, unchanged or failed)."""


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


@dataclass(frozen=True)
class _Parsed:
    """A file read and chunked, ready to store (or why it cannot be)."""

    path: Path
    source: str
    content_hash: str
    pages: int = 0
    chunks: tuple[Chunk, ...] = ()
    unchanged: bool = False
    error: str | None = None


def _ordered_map(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Sequence[T], window: int
) -> Iterator[R]:
    """pool.map in order, with at most `window` items in flight (bounded memory)."""
    pending: list[Future[R]] = []
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()


class Ingestor:
    """Ingests files into collections of one index with one embedder."""

    def __init__(
        self,
        *,
        index: ChromaIndex,
        embedder: Embedder,
        chunk_size: int = 200,
        chunk_overlap: int = 30,
        pdf_timeout_s: float = 120.0,
        pdf_memory_mb: int = 2048,
        parse_workers: int = 2,
        isolate_pdfs: bool = True,
    ) -> None:
        self._index = index
        self._embedder = embedder
        self._chunk_size = chunk_size
        self._chunk_overlap = chunk_overlap
        self._pdf_timeout_s = pdf_timeout_s
        self._pdf_memory_mb = pdf_memory_mb
        self._parse_workers = max(1, parse_workers)
        self._isolate_pdfs = isolate_pdfs
        self._size_lock = threading.Lock()
        self._effective_size: int | None = None
        self._store_lock = threading.Lock()

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        collection: str,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        passwords: Mapping[str, str] | None = None,
        password: str | None = None,
        progress: IngestProgress | None = None,
    ) -> IngestReport:
        """Ingest files and folders; a bad file is reported and skipped, never fatal."""
        validate_collection_name(collection)
        files, missing, skipped = discover(paths, include=include, exclude=exclude)
        report = IngestReport(skipped=skipped)
        for error in missing:
            report.add(FileResult(error.path, error=error.error))
        if progress is not None:
            progress.start(len(files))
        secrets = dict(passwords or {})

        def parse(path: Path) -> _Parsed:
            try:
                return self._parse(path, catalogue, password_for(path, secrets, password), pdfs)
            except Exception as error:  # a bug or a library failure costs this file only
                logger.exception("unexpected error while reading %s", path)
                reason = f"unexpected error while reading ({type(error).__name__}): {error}"
                return _Parsed(path, source_id(path), "", error=reason)

        # Parsing runs ahead in worker threads (PDFs in child processes) while this thread
        # embeds and stores, so the CPU-heavy stages overlap.
        with (
            self._store_lock,
            worker_pool(size=self._parse_workers, memory_mb=self._pdf_memory_mb) as pdfs,
            ThreadPoolExecutor(self._parse_workers) as pool,
        ):
            # Read under the lock, so a concurrent ingest's versions are seen.
            catalogue = self._index.documents(collection)
            # Chunks each visible document version holds, kept current as files are stored.
            expected = {s: r.chunks for s, r in catalogue.items() if r.status == "ready"}
            for parsed in _ordered_map(pool, parse, files, window=self._parse_workers * 2):
                result = self._store(parsed, collection, catalogue)
                if result.error is None and not result.unchanged:
                    expected[parsed.source] = len(parsed.chunks)
                report.add(result)
                if progress is not None:
                    progress.file_done(result)
            self._sweep_if_needed(collection, sum(expected.values()))
        return report

    def _sweep_if_needed(self, collection: str, expected: int) -> None:
        """Remove chunks an interrupted earlier run left behind (cheap count check first)."""
        counts = (self._index.count(collection), self._index.keyword_count(collection))
        if expected and counts != (expected, expected):
            removed = self._index.sweep(collection)
            logger.info("removed %d chunks left by an interrupted ingest", removed)

    def _chunk_size_tokens(self) -> int:
        """The chunk size, capped so no chunk is longer than the embedder reads."""
        with self._size_lock:
            if self._effective_size is None:
                limit = self._embedder.max_seq_length - 2  # room for [CLS] and [SEP]
                if self._chunk_size > limit:
                    logger.warning(
                        "chunk size %d tokens exceeds the embedder's %d-token window; using %d",
                        self._chunk_size, limit + 2, limit,
                    )  # fmt: skip
                self._effective_size = min(self._chunk_size, limit)
            return self._effective_size

    def _load(self, path: Path, source: str, password: str | None, pdfs: WorkerPool) -> list[Page]:
        if file_format(path) == "pdf" and self._isolate_pdfs:
            return pdfs.call(
                load_pdf, path, source=source, password=password, timeout_s=self._pdf_timeout_s
            )
        return load(path, source=source, password=password)

    def _parse(
        self,
        path: Path,
        catalogue: Mapping[str, DocumentRecord],
        password: str | None,
        pdfs: WorkerPool,
    ) -> _Parsed:
        source = source_id(path)
        try:
            content_hash = hashlib.sha256(read_bytes(path)).hexdigest()
            known = catalogue.get(source)
            if known and known.status == "ready" and known.content_hash == content_hash:
                return _Parsed(path, source, content_hash, unchanged=True)
            pages = self._load(path, source, password, pdfs)
            size = self._chunk_size_tokens()
            chunks = split_pages(
                pages,
                chunk_size=size,
                chunk_overlap=min(self._chunk_overlap, size // 2),
                version=content_hash,
                count_tokens=self._embedder.count_tokens,
            )
        except LoadError as error:
            return _Parsed(path, source, "", error=str(error))
        if not chunks:
            return _Parsed(path, source, content_hash, error="the file contains no text")
        unique = tuple({c.id: c for c in chunks}.values())
        return _Parsed(path, source, content_hash, pages=len(pages), chunks=unique)

    def _store(
        self, parsed: _Parsed, collection: str, catalogue: Mapping[str, DocumentRecord]
    ) -> FileResult:
        name = str(parsed.path)
        if parsed.unchanged:
            return FileResult(name, unchanged=True)
        if parsed.error is not None:
            logger.warning("skipping %s: %s", parsed.path, parsed.error)
            if parsed.source not in catalogue:  # never hide a good earlier version
                self._index.put_document(collection, _record(parsed, error=parsed.error))
            return FileResult(name, error=parsed.error)
        # Vectors of chunks whose text is unchanged since the last version are reused.
        known = self._index.vectors_for_source(collection, parsed.source)
        todo = [c for c in parsed.chunks if c.text not in known]
        fresh = self._embedder.embed_documents([c.text for c in todo])
        vectors = known | {c.text: v for c, v in zip(todo, fresh, strict=True)}
        removed = self._index.publish(
            collection, [_record(parsed)], parsed.chunks, [vectors[c.text] for c in parsed.chunks]
        )
        logger.info("%s: %d chunks stored, %d removed", name, len(parsed.chunks), removed)
        return FileResult(name, chunks_added=len(parsed.chunks), chunks_removed=removed)

    def delete(self, collection: str, source: str) -> int:
        """Remove one document from a collection; returns the number of chunks removed."""
        with self._store_lock:
            return self._index.remove_document(collection, source)


def _record(parsed: _Parsed, *, error: str = "") -> DocumentRecord:
    return DocumentRecord(
        source=parsed.source,
        content_hash=parsed.content_hash,
        pages=parsed.pages,
        chunks=len(parsed.chunks),
        ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
        status="failed" if error else "ready",
        error=error,
    )
