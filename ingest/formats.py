"""The file formats ragqa reads: extension -> loader, and whether it parses in a worker process.

A new format is a loader function (in `ingest.loaders`, or a module of its own) and a row here;
discovery, uploads, the pipeline and the error messages all read this table.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from ingest.loaders import (
    LoadError,
    Page,
    load_faq_file,
    load_html,
    load_markdown,
    load_rst,
    load_text,
)
from ingest.mail import load_eml, load_msg
from ingest.ocr import load_image, load_pdf
from ingest.office import load_docx, load_epub, load_pptx
from ingest.opendocument import load_odp, load_ods, load_odt
from ingest.sheets import load_csv, load_xlsx

Loader = Callable[..., list[Page]]  # (path, *, source, password=None) -> pages


def load_mail(
    path: Path, *, source: str, password: str | None = None, **options: Any
) -> list[Page]:
    """An e-mail message (.eml or .msg) and its attachments, each read by its own format's
    loader with the reading `options` (in the same worker, so the message's limits cover
    them)."""
    read = functools.partial(read_attachment, **options)
    loader = load_msg if path.suffix.lower() == ".msg" else load_eml
    return loader(path, source=source, read=read)


def read_attachment(name: str, data: bytes, source: str, **options: Any) -> list[Page]:
    """The pages of an attached file, read by the loader its name's extension picks."""
    suffix = "".join(PurePath(name).suffixes[-2:])[-40:]
    with tempfile.TemporaryDirectory(prefix="ragqa-attachment-") as folder:
        path = Path(folder) / f"attachment{suffix}"
        path.write_bytes(data)
        return load(path, source=source, **options)


@dataclass(frozen=True)
class Format:
    """A file format: its name, its loader, whether to parse it in an isolated process
    (binary formats whose parsers a hostile file can hang, bloat or crash), whether its
    loader reads text by OCR (it then takes `ocr_languages`), and whether it has footnotes
    and comments (it then takes `footnotes` and `comments`)."""

    name: str
    load: Loader
    isolated: bool = False
    ocr: bool = False
    notes: bool = False

    def options(self, given: Mapping[str, object]) -> dict[str, object]:
        """The reading options (`ocr_languages`, `footnotes`, `comments`) this loader takes."""
        wanted = ({"ocr_languages"} if self.ocr else set()) | (
            {"footnotes", "comments"} if self.notes else set()
        )
        return {k: v for k, v in given.items() if k in wanted}


TEXT = Format("text", load_text)
MARKDOWN = Format("markdown", load_markdown)
RST = Format("rst", load_rst)
HTML = Format("html", load_html)
FAQ = Format("faq", load_faq_file)
PDF = Format("pdf", load_pdf, isolated=True, ocr=True)
IMAGE = Format("image", load_image, isolated=True, ocr=True)
DOCX = Format("docx", load_docx, isolated=True, notes=True)
PPTX = Format("pptx", load_pptx, isolated=True)
XLSX = Format("xlsx", load_xlsx, isolated=True)
EPUB = Format("epub", load_epub, isolated=True)
ODT = Format("odt", load_odt, isolated=True, notes=True)
ODS = Format("ods", load_ods, isolated=True)
ODP = Format("odp", load_odp, isolated=True)
# Attachments are read with the same options as files.
EMAIL = Format("email", load_mail, isolated=True, ocr=True, notes=True)
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
    ".odt": ODT, ".ods": ODS, ".odp": ODP,
    ".eml": EMAIL, ".msg": EMAIL,
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
    ocr_languages: str | None = None, footnotes: bool = True, comments: bool = False,
) -> list[Page]:  # fmt: skip
    """Read a supported file into pages, here (with OCR in `ocr_languages`, and footnotes
    and comments kept or not, for the formats that have them); raise LoadError with a reason
    otherwise."""
    found = file_format(path)
    if found is None:
        supported = ", ".join(sorted(FORMATS))
        raise LoadError(
            f"unsupported file type {path.suffix or '(none)'!r}; supported: {supported}"
        )
    given = {"ocr_languages": ocr_languages, "footnotes": footnotes, "comments": comments}
    return found.load(path, source=source or str(path), password=password,
                      **found.options(given))  # fmt: skip
