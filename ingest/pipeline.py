"""Ingest files into a collection: discover, parse (overlapped), chunk, embed what is new, store.

Each document is stored as a new version beside the old one and made visible by one catalogue
update, then the old version is deleted: a crash at any point leaves either the old or the new
version searchable, and running the same ingest again finishes the job without duplicates.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from ingest.chunking import split_pages
from ingest.discovery import discover, password_for, source_id
from ingest.formats import file_format, load
from ingest.isolation import WorkerPool, worker_pool
from ingest.loaders import LoadError, Page, read_bytes
from ingest.report import FileResult, IngestProgress, IngestReport
from retrieval.chroma import validate_collection_name
from retrieval.embedder import Embedder
from retrieval.index import ChromaIndex
from retrieval.types import Chunk, DocumentRecord

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


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
    ocr_pages: tuple[int, ...] = ()  # pages whose text OCR read


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
        ocr_languages: str | None = None,
        ocr_timeout_s: float = 900.0,
    ) -> None:
        # OCR (None: off) reads scanned PDF pages and images; such a file may take longer.
        self._ocr_languages = ocr_languages
        self._ocr_timeout_s = ocr_timeout_s
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
        found = file_format(path)
        ocr = found is not None and found.ocr and self._ocr_languages is not None
        if found is not None and found.isolated and self._isolate_pdfs:
            options = {"ocr_languages": self._ocr_languages} if found.ocr else {}
            timeout = max(self._pdf_timeout_s, self._ocr_timeout_s) if ocr else self._pdf_timeout_s
            return pdfs.call(found.load, path, source=source, password=password,
                             timeout_s=timeout, **options)  # fmt: skip
        return load(path, source=source, password=password, ocr_languages=self._ocr_languages)

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
        ocr = tuple(p.number or 1 for p in pages if p.metadata.get("ocr"))
        return _Parsed(path, source, content_hash, pages=len(pages), chunks=unique, ocr_pages=ocr)

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
        return FileResult(name, chunks_added=len(parsed.chunks), chunks_removed=removed,
                          ocr_pages=parsed.ocr_pages)  # fmt: skip

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
