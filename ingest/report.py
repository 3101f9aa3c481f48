"""What an ingest run did: per-file results, the run's report, and the progress protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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
    ocr_pages: tuple[int, ...] = ()  # pages whose text OCR read (images: their frames)
    attachments: tuple[str, ...] = ()  # documents stored from inside the file (e-mail)
    attachment_errors: tuple[tuple[str, str], ...] = ()  # (document, why it was not read)


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
    ocr_pages: dict[str, tuple[int, ...]] = field(default_factory=dict)  # path -> pages
    attachments: list[str] = field(default_factory=list)  # documents read from inside files
    attachment_errors: list[FileError] = field(default_factory=list)  # and those not read

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
        if result.ocr_pages:
            self.ocr_pages[result.path] = result.ocr_pages
        self.attachments += result.attachments
        self.attachment_errors += [FileError(s, e) for s, e in result.attachment_errors]

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
            "ocr_pages": {path: list(pages) for path, pages in self.ocr_pages.items()},
            "attachments": self.attachments,
            "attachment_errors": [
                {"source": e.path, "error": e.error} for e in self.attachment_errors
            ],
        }


class IngestProgress(Protocol):
    """Receives progress as files are ingested (a terminal bar, an HTTP job)."""

    def start(self, total_files: int) -> None:
        """The number of files about to be ingested."""

    def file_done(self, result: FileResult) -> None:
        """One file finished (ok, unchanged or failed)."""
