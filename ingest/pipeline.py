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
from ingest.parts import Part, descendants, inner_documents
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
    parts: tuple[Part, ...] = ()  # documents that came inside this file (e-mail attachments)


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
        footnotes: bool = True,
        comments: bool = False,
    ) -> None:
        # OCR (None: off) reads scanned PDF pages and images; such a file may take longer.
        self._ocr_languages = ocr_languages
        self._footnotes, self._comments = footnotes, comments  # Word and OpenDocument files
        self._reading = {"ocr_languages": ocr_languages, "footnotes": footnotes,
                         "comments": comments}  # fmt: skip
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
            # Read under the lock, so a concurrent ingest's versions are seen; kept current
            # as files are stored (parse threads read other files' entries meanwhile).
            catalogue = self._index.documents(collection)
            for parsed in _ordered_map(pool, parse, files, window=self._parse_workers * 2):
                result = self._store(parsed, collection, catalogue)
                report.add(result)
                if progress is not None:
                    progress.file_done(result)
            expected = sum(r.chunks for r in catalogue.values() if r.status == "ready")
            self._sweep_if_needed(collection, expected)
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
            timeout = max(self._pdf_timeout_s, self._ocr_timeout_s) if ocr else self._pdf_timeout_s
            return pdfs.call(found.load, path, source=source, password=password,
                             timeout_s=timeout, **found.options(self._reading))  # fmt: skip
        return load(path, source=source, password=password, ocr_languages=self._ocr_languages,
                    footnotes=self._footnotes, comments=self._comments)  # fmt: skip

    def _parse(
        self,
        path: Path,
        catalogue: Mapping[str, DocumentRecord],
        password: str | None,
        pdfs: WorkerPool,
    ) -> _Parsed:
        # A file's pages may name other documents (an e-mail's attachments): each becomes a
        # document of its own, in the same version as the file that holds it.
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
        if not any(c.source == source for c in chunks):
            return _Parsed(path, source, content_hash, error="the file contains no text")
        unique = tuple({c.id: c for c in chunks}.values())
        own = [p for p in pages if p.source == source]
        ocr = tuple(p.number or 1 for p in own if p.metadata.get("ocr"))
        return _Parsed(path, source, content_hash, pages=len(own), chunks=unique, ocr_pages=ocr,
                       parts=inner_documents(source, pages, unique))  # fmt: skip

    def _store(
        self, parsed: _Parsed, collection: str, catalogue: dict[str, DocumentRecord]
    ) -> FileResult:
        name = str(parsed.path)
        if parsed.unchanged:
            return FileResult(name, unchanged=True)
        if parsed.error is not None:
            logger.warning("skipping %s: %s", parsed.path, parsed.error)
            if parsed.source not in catalogue:  # never hide a good earlier version
                catalogue[parsed.source] = _record(parsed, error=parsed.error)
                self._index.put_document(collection, catalogue[parsed.source])
            return FileResult(name, error=parsed.error)
        records = [_record(parsed)] + [part.record(parsed.content_hash) for part in parsed.parts]
        # Attachments the new version no longer has go first: a crash after this leaves the
        # old version visible without them, and the next run stores the new one.
        kept = {r.source for r in records}
        for gone in descendants(catalogue, parsed.source) - kept:
            self._index.remove_document(collection, gone)
            del catalogue[gone]
        # Vectors of chunks whose text is unchanged since the last version are reused.
        known: dict[str, list[float]] = {}
        for record in records:
            known |= self._index.vectors_for_source(collection, record.source)
        todo = [c for c in parsed.chunks if c.text not in known]
        fresh = self._embedder.embed_documents([c.text for c in todo])
        vectors = known | {c.text: v for c, v in zip(todo, fresh, strict=True)}
        removed = self._index.publish(
            collection, records, parsed.chunks, [vectors[c.text] for c in parsed.chunks]
        )
        catalogue.update((r.source, r) for r in records)
        logger.info("%s: %d chunks stored, %d removed", name, len(parsed.chunks), removed)
        return FileResult(name, chunks_added=len(parsed.chunks), chunks_removed=removed,
                          ocr_pages=parsed.ocr_pages,
                          attachments=tuple(p.source for p in parsed.parts if not p.error),
                          attachment_errors=tuple((p.source, p.error) for p in parsed.parts
                                                  if p.error))  # fmt: skip

    def delete(self, collection: str, source: str) -> int:
        """Remove one document (and the attachments that came with it) from a collection;
        returns the number of chunks removed."""
        with self._store_lock:
            removed = self._index.remove_document(collection, source)
            for part in descendants(self._index.documents(collection), source):
                removed += self._index.remove_document(collection, part)
            return removed


def _record(parsed: _Parsed, *, error: str = "") -> DocumentRecord:
    return DocumentRecord(
        source=parsed.source,
        content_hash=parsed.content_hash,
        pages=parsed.pages,
        chunks=sum(c.source == parsed.source for c in parsed.chunks),
        ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
        status="failed" if error else "ready",
        error=error,
    )
