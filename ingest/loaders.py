"""Read files into pages of text (the only module that imports pypdf)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".rst"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | PDF_SUFFIXES


@dataclass(frozen=True)
class Page:
    """The text of one page (PDF) or of a whole document (number None)."""

    source: str
    number: int | None
    text: str


class LoadError(Exception):
    """A file that could not be read; the message says why."""


def is_supported(path: Path) -> bool:
    """Whether `load` knows how to read this file type."""
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def load(path: Path, *, source: str | None = None) -> list[Page]:
    """Read a supported file into pages; raise LoadError with a reason otherwise."""
    suffix = path.suffix.lower()
    name = source or str(path)
    if suffix in PDF_SUFFIXES:
        return load_pdf(path, source=name)
    if suffix in TEXT_SUFFIXES:
        return load_text(path, source=name)
    supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
    raise LoadError(f"unsupported file type {suffix or '(none)'!r}; supported: {supported}")


def load_text(path: Path, *, source: str) -> list[Page]:
    """Read a text file as UTF-8, falling back to Latin-1 for legacy files."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise LoadError(f"cannot read file: {error.strerror or error}") from error
    if b"\x00" in raw[:8192]:
        raise LoadError("looks like a binary file, not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        logger.info("%s is not UTF-8; reading it as Latin-1", path)
        text = raw.decode("latin-1")
    return [Page(source=source, number=None, text=text)]


def load_pdf(path: Path, *, source: str) -> list[Page]:
    """Extract the text layer of each page of a PDF (pages are numbered from 1)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("the PDF is encrypted and needs a password")
        pages = [
            Page(source=source, number=i, text=page.extract_text() or "")
            for i, page in enumerate(reader.pages, start=1)
        ]
    except LoadError:
        raise
    except PdfReadError as error:
        raise LoadError(f"cannot parse PDF: {error}") from error
    except Exception as error:  # pypdf raises many kinds on malformed files; one file, one error
        raise LoadError(f"cannot parse PDF ({type(error).__name__}): {error}") from error
    if not any(p.text.strip() for p in pages):
        raise LoadError("the PDF has no text layer (scanned images?); run OCR on it first")
    return pages
