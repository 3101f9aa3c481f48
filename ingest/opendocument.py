"""OpenDocument files, read from their content.xml with lxml in the isolated worker (odfpy,
the usual library, fails on files pandoc writes: their styles.xml declares a namespace twice):
text (.odt) as Word files, spreadsheets (.ods) as Excel workbooks, presentations (.odp) as
PowerPoint decks."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Set
from pathlib import Path
from typing import Any

from ingest.cleaning import normalize_text
from ingest.loaders import LoadError, Page, require_zip
from ingest.sheets import sheet_pages, table_text
from ingest.structure import join_blocks

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
}
_T, _TABLE, _OFFICE = f"{{{_NS['text']}}}", f"{{{_NS['table']}}}", f"{{{_NS['office']}}}"
_DRAW, _PRESENTATION = f"{{{_NS['draw']}}}", f"{{{_NS['presentation']}}}"
MAX_ROWS = 1_048_576  # as Excel and LibreOffice: a sheet claiming more is cut there
_SKIPPED = {_T + "note", _T + "tracked-changes", _T + "sequence-decls", _T + "soft-page-break",
            _OFFICE + "annotation", _OFFICE + "annotation-end"}  # fmt: skip
_DC = "{http://purl.org/dc/elements/1.1/}"


def load_odt(
    path: Path, *, source: str, password: str | None = None, footnotes: bool = True,
    comments: bool = False,
) -> list[Page]:  # fmt: skip
    """An OpenDocument text file as one page: paragraphs, lists and tables in order, its
    headings (text:h, by outline level) as sections; footnotes ("Footnote 1: ...") and
    comments ("Comment by Ana Lima: ...") after the paragraph that holds them, when kept."""
    body = _body(path, "text", ".odt")
    keep = {_T + "note"} if footnotes else set()
    keep |= {_OFFICE + "annotation"} if comments else set()
    text, sections = join_blocks(_blocks(body, keep))
    return [Page(source=source, number=None, text=text, sections=sections)]


def load_ods(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """An OpenDocument spreadsheet: each sheet's pages, as for Excel (see `sheet_pages`);
    numbers, dates and booleans read as their stored values, formulas as last computed."""
    pages = []
    for table in _body(path, "spreadsheet", ".ods").iterfind("table:table", _NS):
        pages += sheet_pages(source, table.get(_TABLE + "name", ""), _sheet_rows(table))
    return pages


def load_odp(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """An OpenDocument presentation: one page per slide that has text (numbered as in the
    deck), its title as the section, its text boxes and tables in order, then its notes."""
    pages = []
    deck = _body(path, "presentation", ".odp")
    for number, slide in enumerate(deck.iterfind("draw:page", _NS), start=1):
        title, parts = "", []
        for frame in slide.iterfind(".//draw:frame", _NS):
            role = frame.get(_PRESENTATION + "class", "")
            if role in {"notes", "page-number", "date-time", "footer", "header"}:
                continue  # notes come last; the others are the master's furniture
            if frame.getparent().tag == _PRESENTATION + "notes":
                continue
            text, _ = join_blocks(_blocks(frame))
            text = text.strip()
            if role == "title" and not title:
                title = " ".join(text.split())
            if text and text not in parts:
                parts.append(text)
        notes = [join_blocks(_blocks(frame))[0].strip() for frame in
                 slide.iterfind("presentation:notes//draw:frame[@presentation:class='notes']",
                                _NS)]  # fmt: skip
        if any(notes):
            parts.append("Notes: " + "\n".join(n for n in notes if n))
        text = normalize_text("\n\n".join(parts)).strip()
        if text:
            pages.append(Page(source=source, number=number, text=text,
                              sections=((0, title),) if title else (),
                              metadata={"slide": number}))  # fmt: skip
    return pages


def _body(path: Path, kind: str, suffix: str) -> Any:
    """The office:body child of that kind (office:text, office:spreadsheet, ...)."""
    body = _content(path, suffix).find(f"office:body/office:{kind}", _NS)
    if body is None:
        raise LoadError(f"not an OpenDocument {kind}: its content has no {kind} body (another "
                        f"OpenDocument type renamed {suffix}?)")  # fmt: skip
    return body


def _sheet_rows(table: Any) -> Iterator[list[object]]:
    """The rows of a sheet as values, numbered as the spreadsheet numbers them: repeated
    empty rows (LibreOffice writes a million of them after the last) only before a row that
    has something in it."""
    pending, number = 0, 0
    for row in table.iter(_TABLE + "table-row"):
        repeat = int(row.get(_TABLE + "number-rows-repeated", "1"))
        cells = _row_values(row)
        if not any(cells):
            pending += repeat
            continue
        for _ in range(min(repeat, MAX_ROWS - number)):
            yield from ([] for _ in range(pending))
            number += pending + 1
            pending = 0
            yield cells
        if number >= MAX_ROWS:
            return


def _row_values(row: Any) -> list[object]:
    cells: list[object] = []
    pending = 0  # empty cells, written out only before a cell that has a value
    for cell in row:
        if cell.tag not in (_TABLE + "table-cell", _TABLE + "covered-table-cell"):
            continue
        repeat = min(int(cell.get(_TABLE + "number-columns-repeated", "1")), 1024)
        value = _cell_value(cell)
        if value in (None, ""):
            pending += repeat
            continue
        cells += [""] * pending + [value] * repeat
        pending = 0
    return cells


def _cell_value(cell: Any) -> object:
    kind = cell.get(_OFFICE + "value-type")
    if kind == "float":
        return float(cell.get(_OFFICE + "value", "0"))
    if kind == "date":
        value = cell.get(_OFFICE + "date-value", "")
        return value.removesuffix("T00:00:00")
    if kind == "boolean":
        return cell.get(_OFFICE + "boolean-value", "").upper()
    return "\n".join(_text(p) for p in cell.iterfind("text:p", _NS))


def _content(path: Path, suffix: str) -> Any:
    from lxml import etree

    old = {".odt": ".doc or .sxw", ".ods": ".xls or .sxc", ".odp": ".ppt or .sxi"}[suffix]
    require_zip(path, "OpenDocument", suffix, f"an old {old}? save it as {suffix}")
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as content:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
            return etree.parse(content, parser).getroot()
    except (KeyError, zipfile.BadZipFile, etree.XMLSyntaxError) as error:
        raise LoadError(f"not a readable OpenDocument file: {error}") from error


def _blocks(element: Any, keep: Set[str] = frozenset()) -> Iterator[tuple[int | None, str]]:
    """(heading level or None, text) of each heading, paragraph and table, in order; after a
    paragraph, the footnotes and comments in it whose tags are in `keep`."""
    for child in element:
        tag = child.tag
        if tag in (_T + "h", _T + "p"):
            level = int(child.get(_T + "outline-level", "1")) if tag == _T + "h" else None
            yield level, _text(child)
            for aside in child.iter(*keep) if keep else ():
                yield None, _aside(aside)
        elif tag == _TABLE + "table":
            yield None, table_text(_rows(child))
        elif tag not in _SKIPPED and isinstance(tag, str):  # lists, sections, frames
            yield from _blocks(child, keep)


def _aside(element: Any) -> str:
    """A footnote as "Footnote 1: ...", a comment as "Comment by Ana Lima: ..."."""
    paragraphs = element.iterfind(".//text:p", _NS)
    text = " ".join(" ".join(_text(p) for p in paragraphs).split())
    if element.tag == _T + "note":
        citation = element.findtext("text:note-citation", "", _NS)
        kind = "Endnote" if element.get(_T + "note-class") == "endnote" else "Footnote"
        return f"{kind} {citation}: {text}"
    author = element.findtext(_DC + "creator", "")
    return f"Comment{f' by {author}' if author else ''}: {text}"


def _rows(table: Any) -> list[list[str]]:
    rows = []
    for row in table.iter(_TABLE + "table-row"):
        cells = []
        for cell in row:
            if cell.tag in (_TABLE + "table-cell", _TABLE + "covered-table-cell"):
                text = " ".join(" ".join(_text(p) for p in cell).split())
                repeat = min(int(cell.get(_TABLE + "number-columns-repeated", "1")), 64)
                cells += [text] * (repeat if text else 1)
        rows.append(cells)
    return rows


def _text(element: Any) -> str:
    """The text of a paragraph or heading: spans, links and spaces (text:s, text:tab,
    text:line-break) as written; footnotes and change marks left out."""
    parts = [element.text or ""]
    for child in element:
        tag = child.tag
        if tag == _T + "s":
            parts.append(" " * int(child.get(_T + "c", "1")))
        elif tag == _T + "tab":
            parts.append("\t")
        elif tag == _T + "line-break":
            parts.append("\n")
        elif tag not in _SKIPPED and isinstance(tag, str):
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts)
