"""Office documents, read in the isolated worker (each is a zip a hostile file can bloat): Word
(.docx, python-docx) with headings as sections; PowerPoint (.pptx, python-pptx) one page per
slide with its title and speaker notes. Tables become readable rows."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ingest.cleaning import normalize_text
from ingest.loaders import LoadError, Page, decode, office_package, require_zip
from ingest.sheets import table_text
from ingest.structure import html_text, join_blocks

_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def load_docx(
    path: Path, *, source: str, password: str | None = None, footnotes: bool = True,
    comments: bool = False,
) -> list[Page]:  # fmt: skip
    """A Word file as one page: its paragraphs and tables in document order, its headings
    (styles "Title", "Heading 1" ...) as sections. Footnotes ("Footnote 1: ...") and review
    comments ("Comment by Ana Lima: ...") follow the paragraph that cites them, when kept."""
    document = _open_docx(path, password)
    notes = _footnotes(document) if footnotes else {}
    remarks = {str(c.comment_id): c for c in document.comments} if comments else {}
    text, sections = join_blocks(_blocks(document, notes, remarks))
    return [Page(source=source, number=None, text=text, sections=sections)]


def load_pptx(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """A PowerPoint file: one page per slide that has text (numbered as in the deck), its
    title as the section, its text frames and tables in order, then its speaker notes."""
    deck = _open_pptx(path, password)
    pages = []
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        parts = [title] if title else []
        parts += [text for text in _shape_texts(slide.shapes) if text and text != title]
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                parts.append(f"Notes: {notes.text.strip()}")
        text = normalize_text("\n\n".join(parts)).strip()
        if text:
            sections = ((0, title),) if title else ()
            pages.append(Page(source=source, number=number, text=text, sections=sections,
                              metadata={"slide": number}))  # fmt: skip
    return pages


def _shape_texts(shapes: Any) -> Iterator[str]:
    """The text of each shape with text (a group's shapes in turn), tables as rows."""
    for shape in shapes:
        if getattr(shape, "shapes", None) is not None:  # a group
            yield from _shape_texts(shape.shapes)
        elif getattr(shape, "has_table", False):
            yield table_text([[" ".join(c.text.split()) for c in row.cells]
                              for row in shape.table.rows])  # fmt: skip
        elif getattr(shape, "has_text_frame", False):
            yield shape.text_frame.text.strip()


def _open_pptx(path: Path, password: str | None) -> Any:
    import pptx
    from pptx.exc import PackageNotFoundError

    package = office_package(path, password, kind="PowerPoint", suffix=".pptx", old=".ppt")
    return _open(package, pptx.Presentation, PackageNotFoundError, "PowerPoint")


def _open_docx(path: Path, password: str | None) -> Any:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    package = office_package(path, password, kind="Word", suffix=".docx", old=".doc")
    return _open(package, docx.Document, PackageNotFoundError, "Word")


def _open(package: Path | io.BytesIO, opener: Callable[[Any], Any], missing: type[Exception],
          kind: str) -> Any:  # fmt: skip
    """The document `opener` reads, or a LoadError that says why it cannot."""
    try:
        return opener(str(package) if isinstance(package, Path) else package)
    except (missing, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise LoadError(f"not a readable {kind} file: {error}") from error


def _blocks(
    document: Any, notes: dict[str, str], remarks: dict[str, Any]
) -> Iterator[tuple[int | None, str]]:
    """(heading level or None, text) of each paragraph and table, in document order; after a
    paragraph, the footnotes and comments it cites that are in `notes` and `remarks`."""
    from docx.table import Table

    numbered: dict[str, int] = {}  # footnotes are numbered as a reader sees them
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            yield None, table_text(_cells(item))
            continue
        style = (item.style.name if item.style is not None else "") or ""
        found = _HEADING.match(style)
        level = 0 if style.lower() == "title" else int(found.group(1)) if found else None
        yield level, item.text
        for ref in item._p.xpath(".//w:footnoteReference/@w:id"):
            number = numbered.setdefault(ref, len(numbered) + 1)
            if notes.get(ref):
                yield None, f"Footnote {number}: {notes[ref]}"
        for ref in item._p.xpath(".//w:commentReference/@w:id"):
            if ref in remarks and remarks[ref].text.strip():
                author = f" by {remarks[ref].author}" if remarks[ref].author else ""
                yield None, f"Comment{author}: {' '.join(remarks[ref].text.split())}"


def _footnotes(document: Any) -> dict[str, str]:
    """Footnote id -> text, from the footnotes part (python-docx has no API for it)."""
    from docx.opc.constants import RELATIONSHIP_TYPE
    from lxml import etree

    for rel in document.part.rels.values():
        if rel.reltype == RELATIONSHIP_TYPE.FOOTNOTES and not rel.is_external:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
            root, ns = etree.fromstring(rel.target_part.blob, parser), {"w": _W}
            return {
                note.get(f"{{{_W}}}id"): " ".join("".join(note.xpath(".//w:t/text()",
                                                                     namespaces=ns)).split())
                for note in root.xpath("w:footnote[not(@w:type)]", namespaces=ns)
            }  # fmt: skip
    return {}


def _cells(table: Any) -> list[list[str]]:
    """The table's rows of cell texts; a cell merged across columns counts once."""
    rows = []
    for row in table.rows:
        seen: list[Any] = []
        cells = []
        for cell in row.cells:
            if any(cell._tc is other for other in seen):
                continue
            seen.append(cell._tc)
            cells.append(" ".join(cell.text.split()))
        rows.append(cells)
    return rows


def load_epub(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """An e-book as one page: its chapters in reading order, each chapter's headings (or, for
    a chapter without one, its title in the table of contents) as sections."""
    book = _open_epub(path)
    titles = _toc_titles(book.toc)
    parts: list[str] = []
    sections: list[tuple[int, str]] = []
    offset = 0
    for idref, _ in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != _EPUB_DOCUMENT:
            continue
        text, found = html_text(decode(item.get_content(), html=True))
        text = normalize_text(text).strip()
        if not text:
            continue
        title = titles.get(item.get_name())
        if not found and title:
            found = ((0, title),)
        sections += [(offset + at, name) for at, name in found]
        parts.append(text)
        offset += len(text) + 2
    return [Page(source=source, number=None, text="\n\n".join(parts), sections=tuple(sections))]


_EPUB_DOCUMENT = 9  # ebooklib.ITEM_DOCUMENT, without importing ebooklib at module load


def _toc_titles(toc: Any) -> dict[str, str]:
    """File name -> title, from a table of contents of links and nested sections."""
    titles: dict[str, str] = {}
    for entry in toc:
        if isinstance(entry, tuple | list):
            titles |= _toc_titles(entry[1]) | _toc_titles([entry[0]])
        elif getattr(entry, "href", None) and getattr(entry, "title", None):
            titles.setdefault(str(entry.href).split("#")[0], str(entry.title))
    return titles


def _open_epub(path: Path) -> Any:
    from ebooklib import epub

    def read(name: str) -> Any:
        return epub.read_epub(name, options={"ignore_ncx": True})

    require_zip(path, "EPUB", ".epub", "an old binary .mobi? save it as .epub")
    return _open(path, read, epub.EpubException, "EPUB")
