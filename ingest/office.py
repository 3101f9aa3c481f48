"""Office documents: Word (.docx) through python-docx, read in the isolated worker (a .docx is a
zip a hostile file can bloat). Headings become sections, tables readable rows."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ingest.cleaning import normalize_text
from ingest.loaders import LoadError, Page
from ingest.structure import heading_paths

_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def load_docx(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """A Word file as one page: its paragraphs and tables in document order, its headings
    (styles "Title", "Heading 1" ...) as sections."""
    document = _open_docx(path)
    blocks: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for level, raw in _blocks(document):
        text = normalize_text(raw).strip()
        if not text:
            continue
        if level is not None:
            headings.append((offset, level, " ".join(text.split())))
        blocks.append(text)
        offset += len(text) + 2  # the blank line that joins blocks
    text = "\n\n".join(blocks)
    return [Page(source=source, number=None, text=text, sections=heading_paths(headings))]


def _open_docx(path: Path) -> Any:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if not zipfile.is_zipfile(path):
        raise LoadError("not a Word file: a .docx is a zip archive and this is not one "
                        "(an old binary .doc? save it as .docx)")  # fmt: skip
    try:
        return docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise LoadError(f"not a readable Word file: {error}") from error


def _blocks(document: Any) -> Iterator[tuple[int | None, str]]:
    """(heading level or None, text) of each paragraph and table, in document order."""
    from docx.table import Table

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            yield None, table_text(_cells(item))
            continue
        style = (item.style.name if item.style is not None else "") or ""
        found = _HEADING.match(style)
        level = 0 if style.lower() == "title" else int(found.group(1)) if found else None
        yield level, item.text


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


def table_text(rows: Sequence[Sequence[str]]) -> str:
    """A table as lines a reader (and a retriever) understands alone: each row after the
    header as "header: value; header: value"; a one-row table as its cells."""
    rows = [row for row in rows if any(cell for cell in row)]
    if len(rows) < 2:
        return " | ".join(cell for row in rows for cell in row if cell)
    header, *body = rows
    lines = []
    for row in body:
        pairs = [f"{name}: {value}" if name else value
                 for name, value in zip(header, row, strict=False) if value]  # fmt: skip
        lines.append("; ".join(pairs))
    return "\n".join(lines)
