"""OpenDocument text (.odt), read from its content.xml with lxml in the isolated worker.
(odfpy, the usual library, fails on files pandoc writes: their styles.xml declares a namespace
twice.) Headings become sections, tables readable rows, as for Word files."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.loaders import LoadError, Page, require_zip
from ingest.sheets import table_text
from ingest.structure import join_blocks

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
}
_T, _TABLE = f"{{{_NS['text']}}}", f"{{{_NS['table']}}}"
_SKIPPED = {_T + "note", _T + "tracked-changes", _T + "sequence-decls", _T + "soft-page-break"}


def load_odt(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """An OpenDocument text file as one page: paragraphs, lists and tables in order, its
    headings (text:h, by outline level) as sections."""
    body = _content(path).find("office:body/office:text", _NS)
    if body is None:
        raise LoadError("not an OpenDocument text: its content has no text body (a .ods or "
                        ".odp renamed?)")  # fmt: skip
    text, sections = join_blocks(_blocks(body))
    return [Page(source=source, number=None, text=text, sections=sections)]


def _content(path: Path) -> Any:
    from lxml import etree

    require_zip(path, "OpenDocument", ".odt", "an old .doc or .sxw? save it as .odt")
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as content:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
            return etree.parse(content, parser).getroot()
    except (KeyError, zipfile.BadZipFile, etree.XMLSyntaxError) as error:
        raise LoadError(f"not a readable OpenDocument file: {error}") from error


def _blocks(element: Any) -> Iterator[tuple[int | None, str]]:
    """(heading level or None, text) of each heading, paragraph and table, in order."""
    for child in element:
        tag = child.tag
        if tag == _T + "h":
            yield int(child.get(_T + "outline-level", "1")), _text(child)
        elif tag == _T + "p":
            yield None, _text(child)
        elif tag == _TABLE + "table":
            yield None, table_text(_rows(child))
        elif tag not in _SKIPPED and isinstance(tag, str):  # lists, sections, frames
            yield from _blocks(child)


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
