"""Read files into normalised pages of text, one function per format (the only module that
imports pypdf). `ingest.formats` says which function reads which file."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ingest.cleaning import normalize_text
from ingest.structure import Sections, html_text, markdown_sections, rst_sections
from retrieval.types import MetadataValue

logger = logging.getLogger(__name__)

NO_TEXT_LAYER = "no text layer (a scanned or image-only PDF?)"
QUESTION_FIELDS = ("question", "q", "query", "prompt", "title")
ANSWER_FIELDS = ("answer", "a", "response", "reply", "body")


@dataclass(frozen=True)
class Page:
    """Normalised text of one PDF page, one FAQ pair, or a whole document (number None).

    `sections` are (offset, "Heading > Subheading") pairs; `whole` asks the chunker to keep
    the page in one chunk when it fits (a FAQ pair); `metadata` is copied to its chunks.
    """

    source: str
    number: int | None
    text: str
    sections: Sections = ()
    whole: bool = False
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)


class LoadError(Exception):
    """A file that could not be read; the message says why."""


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or a LoadError saying why they cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise LoadError(f"cannot read file: {error.strerror or error}") from error


_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def require_zip(path: Path, kind: str, suffix: str, hint: str) -> None:
    """A LoadError unless `path` is a zip archive, as every Office, OpenDocument and EPUB
    file is: "not a Word file: a .docx is a zip archive and this is not one (`hint`)"."""
    if not zipfile.is_zipfile(path):
        article = "an" if kind[0] in "AEIOU" else "a"
        raise LoadError(f"not {article} {kind} file: a {suffix} is a zip archive and this is not "
                        f"one ({hint})")  # fmt: skip


OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a compound file: old .doc/.xls/.ppt, or encrypted


def office_package(
    path: Path, password: str | None, *, kind: str, suffix: str, old: str
) -> Path | io.BytesIO:
    """The zip package of a Word, Excel or PowerPoint file: the file itself, or, for a
    password-protected one, its content decrypted in memory with msoffcrypto-tool. A LoadError
    says what the file is when it is neither (an old binary `old` file renamed)."""
    with path.open("rb") as handle:
        head = handle.read(len(OLE2))
    if head != OLE2:
        require_zip(path, kind, suffix, f"an old binary {old}? save it as {suffix}")
        return path
    import msoffcrypto  # lazily: only protected files need it
    from msoffcrypto.exceptions import DecryptionError, FileFormatError, InvalidKeyError

    binary = LoadError(f"an old binary {old} file named {suffix}: save it as {suffix}")
    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(read_bytes(path)))
        protected = office.format == "ooxml" and office.is_encrypted()
    except (FileFormatError, OSError, ValueError, AssertionError) as error:
        raise binary from error
    if not protected:
        raise binary
    if not password:
        raise LoadError(f"a password-protected {kind} file: give its password with "
                        "--password or --passwords-file, or remove the password")  # fmt: skip
    clear = io.BytesIO()
    try:
        office.load_key(password=password)
        office.decrypt(clear)
    except InvalidKeyError as error:
        raise LoadError(f"wrong password for this password-protected {kind} file") from error
    except (DecryptionError, FileFormatError, ValueError) as error:
        raise LoadError(f"cannot decrypt this {kind} file: {error}") from error
    clear.seek(0)
    return clear


def decode(raw: bytes, *, html: bool = False) -> str:
    """Text from bytes: a declared HTML charset, else UTF-8, else Latin-1 for legacy files."""
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError("looks like a binary file, not text")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    declared = _META_CHARSET.search(raw[:4096]) if html else None
    if declared:
        try:
            return raw.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            logger.info("declared charset %r does not decode; trying UTF-8", declared.group(1))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def load_text(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """A plain text file as one page."""
    return [Page(source=source, number=None, text=normalize_text(decode(read_bytes(path))))]


def load_markdown(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """A Markdown file as one page, with its heading sections."""
    text = normalize_text(decode(read_bytes(path)))
    return [Page(source=source, number=None, text=text, sections=markdown_sections(text))]


def load_rst(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """A reStructuredText file as one page, with its heading sections."""
    text = normalize_text(decode(read_bytes(path)))
    return [Page(source=source, number=None, text=text, sections=rst_sections(text))]


def load_html(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """An HTML page's visible text as one page, with its heading sections."""
    body, sections = html_text(decode(read_bytes(path), html=True))
    return [Page(source=source, number=None, text=normalize_text(body), sections=sections)]


def load_faq_file(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """A FAQ file: JSONL, or CSV by its extension; one page per question/answer pair."""
    return load_faq(decode(read_bytes(path)), source=source,
                    csv_format=path.suffix.lower() == ".csv")  # fmt: skip


def _pick(row: Mapping[str, object], names: tuple[str, ...]) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for name in names:
        value = lowered.get(name)
        if isinstance(value, str | int | float) and str(value).strip():
            return str(value)
    return None


def read_rows(text: str, *, csv_format: bool) -> list[Mapping[str, object]]:
    """The rows of a CSV file (by its header) or the objects of a JSONL file."""
    if csv_format:
        try:  # newline="": the csv module reads line ends itself (a lone \r included)
            return list(csv.DictReader(io.StringIO(text, newline="")))
        except csv.Error as error:
            raise LoadError(f"not a readable CSV file: {error}") from error
    rows: list[Mapping[str, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise LoadError(f"line {number} is not valid JSON: {error.msg}") from error
        if isinstance(item, dict):
            rows.append(item)
    return rows


def load_faq(text: str, *, source: str, csv_format: bool) -> list[Page]:
    """Question/answer pairs from JSONL or CSV; each pair is one page kept as one chunk."""
    rows = read_rows(text, csv_format=csv_format)
    pages = []
    for number, row in enumerate(rows, start=1):
        question, answer = _pick(row, QUESTION_FIELDS), _pick(row, ANSWER_FIELDS)
        if question and answer:
            question, answer = normalize_text(question).strip(), normalize_text(answer).strip()
            pages.append(
                Page(source=source, number=None, text=f"Q: {question}\nA: {answer}", whole=True,
                     metadata={"row": number, "question": question[:500]})
            )  # fmt: skip
    if not pages:
        raise LoadError(
            "no question/answer pairs found: a FAQ file needs a question field "
            f"({', '.join(QUESTION_FIELDS)}) and an answer field ({', '.join(ANSWER_FIELDS)})"
        )
    return pages


def load_pdf(
    path: Path, *, source: str, password: str | None = None, require_text: bool = True
) -> list[Page]:
    """Extract the text layer of each page of a PDF (pages are numbered from 1); with
    `require_text` False, a PDF without any text layer gives its empty pages (for OCR).

    pypdf reads the file; when it cannot, or when its text runs words together (some
    typesetters place words without space characters), PDFium extracts the text instead.
    Untrusted PDFs are parsed through `ingest.isolation`, in a separate process with time
    and memory limits.
    """
    try:
        texts = _pypdf_texts(path, password)
        if _run_together(texts):
            texts = _pdfium_texts(path, password)
    except _PypdfFailedError as failure:
        try:
            texts = _pdfium_texts(path, password)
        except LoadError:
            raise LoadError(str(failure)) from None
    pages = [
        Page(source=source, number=i, text=normalize_text(text))
        for i, text in enumerate(texts, start=1)
    ]
    if require_text and not any(p.text.strip() for p in pages):
        raise LoadError(NO_TEXT_LAYER)
    return pages


class _PypdfFailedError(Exception):
    """pypdf could not parse the file (PDFium may still)."""


def _run_together(texts: list[str]) -> bool:
    """Whether words run together: much of the text in "words" of 20 letters or more."""
    words = " ".join(texts[:40]).split()
    total = sum(len(w) for w in words)
    return total > 500 and sum(len(w) for w in words if len(w) >= 20) > 0.3 * total


def _pypdf_texts(path: Path, password: str | None) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(password or ""):
            if password:
                raise LoadError("the PDF is encrypted and the password given does not open it")
            raise LoadError(
                "the PDF is encrypted and needs a password (--password or --passwords-file)"
            )
        return [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except FileNotDecryptedError as error:
        raise LoadError(f"the PDF is encrypted and cannot be opened: {error}") from error
    except Exception as error:  # pypdf raises many kinds on malformed files; one file, one error
        raise _PypdfFailedError(f"cannot parse PDF ({type(error).__name__}): {error}") from error


def _pdfium_texts(path: Path, password: str | None) -> list[str]:
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(path, password=password)
    except pypdfium2.PdfiumError as error:
        raise LoadError(f"cannot parse PDF: {error}") from error
    try:
        return [document[i].get_textpage().get_text_bounded() for i in range(len(document))]
    finally:
        document.close()
