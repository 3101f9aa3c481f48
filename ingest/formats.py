"""The file formats ragqa reads: extension -> loader, and whether it parses in a worker process.

A new format is a loader function (in `ingest.loaders`, or a module of its own) and a row here;
discovery, uploads, the pipeline and the error messages all read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.loaders import (
    LoadError,
    Page,
    load_faq_file,
    load_html,
    load_markdown,
    load_rst,
    load_text,
)
from ingest.ocr import load_image, load_pdf
from ingest.office import load_docx, load_epub, load_pptx
from ingest.opendocument import load_odt
from ingest.sheets import load_csv, load_xlsx

Loader = Callable[..., list[Page]]  # (path, *, source, password=None) -> pages


@dataclass(frozen=True)
class Format:
    """A file format: its name, its loader, whether to parse it in an isolated process
    (binary formats whose parsers a hostile file can hang, bloat or crash), and whether its
    loader reads text by OCR (it then takes `ocr_languages`)."""

    name: str
    load: Loader
    isolated: bool = False
    ocr: bool = False


TEXT = Format("text", load_text)
MARKDOWN = Format("markdown", load_markdown)
RST = Format("rst", load_rst)
HTML = Format("html", load_html)
FAQ = Format("faq", load_faq_file)
PDF = Format("pdf", load_pdf, isolated=True, ocr=True)
IMAGE = Format("image", load_image, isolated=True, ocr=True)
DOCX = Format("docx", load_docx, isolated=True)
PPTX = Format("pptx", load_pptx, isolated=True)
XLSX = Format("xlsx", load_xlsx, isolated=True)
EPUB = Format("epub", load_epub, isolated=True)
ODT = Format("odt", load_odt, isolated=True)
CSV = Format("csv", load_csv)  # a FAQ file when its header has a question and an answer

FORMATS: dict[str, Format] = {
    ".txt": TEXT, ".text": TEXT,
    ".md": MARKDOWN, ".markdown": MARKDOWN,
    ".rst": RST, ".rest": RST,
    ".html": HTML, ".htm": HTML, ".xhtml": HTML,
    ".jsonl": FAQ, ".csv": CSV,
    ".pdf": PDF,
    ".docx": DOCX,
    ".pptx": PPTX,
    ".xlsx": XLSX,
    ".epub": EPUB,
    ".odt": ODT,
    ".png": IMAGE, ".jpg": IMAGE, ".jpeg": IMAGE, ".tif": IMAGE, ".tiff": IMAGE,
}  # fmt: skip
# `.rst.txt` and `.md.txt` (how Sphinx ships sources) name the inner format.
INNER_FORMATS = (RST, MARKDOWN)


def file_format(path: Path) -> Format | None:
    """The format of a file by its extension, or None when ragqa cannot read it."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if len(suffixes) == 2 and suffixes[1] == ".txt" and FORMATS.get(suffixes[0]) in INNER_FORMATS:
        return FORMATS[suffixes[0]]
    return FORMATS.get(path.suffix.lower())


def load(
    path: Path, *, source: str | None = None, password: str | None = None,
    ocr_languages: str | None = None,
) -> list[Page]:  # fmt: skip
    """Read a supported file into pages, here (with OCR in `ocr_languages` for the formats
    that use it); raise LoadError with a reason otherwise."""
    found = file_format(path)
    if found is None:
        supported = ", ".join(sorted(FORMATS))
        raise LoadError(
            f"unsupported file type {path.suffix or '(none)'!r}; supported: {supported}"
        )
    options = {"ocr_languages": ocr_languages} if found.ocr else {}
    return found.load(path, source=source or str(path), password=password, **options)
