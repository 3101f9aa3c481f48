"""Spreadsheets: Excel (.xlsx, openpyxl, in the isolated worker) and CSV files that are not FAQ
files. Each sheet is a section; its rows are grouped into pages that each read alone, every row
as "header: value; header: value", with the sheet and row range as metadata."""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ingest.cleaning import normalize_text
from ingest.loaders import (
    ANSWER_FIELDS,
    QUESTION_FIELDS,
    LoadError,
    Page,
    decode,
    load_faq,
    office_package,
    read_bytes,
)
from ingest.structure import row_text, table_text

__all__ = ["row_text", "sheet_pages", "table_text"]  # the table rows live in ingest.structure

# About one chunk of the default size (200 tokens): a group is kept whole when it fits.
GROUP_CHARS = 700


def sheet_pages(source: str, sheet: str, rows: Iterable[Sequence[object]]) -> list[Page]:
    """The pages of one sheet: the first non-empty row is the header; the rows after it in
    groups of about GROUP_CHARS characters, each page with its sheet and row range (rows
    numbered as the spreadsheet numbers them, from 1)."""
    header: list[str] | None = None
    pages: list[Page] = []
    lines: list[str] = []
    first = last = 0

    def flush() -> None:
        if lines:
            text = normalize_text("\n".join(lines))
            place = {"sheet": sheet, "rows": f"{first}-{last}"}
            pages.append(Page(source=source, number=None, text=text, sections=((0, sheet),),
                              whole=True, metadata=place))  # fmt: skip
            lines.clear()

    for number, raw in enumerate(rows, start=1):
        cells = [_cell(value) for value in raw]
        if not any(cells):
            continue
        if header is None:
            header = cells
            continue
        line = row_text(header, cells)
        if lines and sum(len(x) + 1 for x in lines) + len(line) > GROUP_CHARS:
            flush()
        if not lines:
            first = number
        lines.append(line)
        last = number
    flush()
    if header is not None and not pages:  # a header alone still says what the sheet holds
        text = " | ".join(c for c in header if c)
        pages.append(Page(source=source, number=None, text=text, sections=((0, sheet),),
                          metadata={"sheet": sheet, "rows": "1-1"}))  # fmt: skip
    return pages


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return " ".join(str(value).split())


def load_xlsx(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """An Excel workbook: each sheet's pages (see `sheet_pages`); formulas read as the values
    Excel last computed."""
    book = _open_xlsx(path, password)
    try:
        pages = []
        for sheet in book.worksheets:
            pages += sheet_pages(source, sheet.title, sheet.iter_rows(values_only=True))
        return pages
    finally:
        book.close()


def _open_xlsx(path: Path, password: str | None) -> Any:
    import openpyxl

    package = office_package(path, password, kind="Excel", suffix=".xlsx", old=".xls")
    try:
        return openpyxl.load_workbook(package, read_only=True, data_only=True)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise LoadError(f"not a readable Excel file: {error}") from error


def load_csv(path: Path, *, source: str, password: str | None = None) -> list[Page]:
    """A CSV file: a FAQ file when its header names a question and an answer field, else a
    table (one sheet named after the file)."""
    text = decode(read_bytes(path))
    try:  # newline="": the csv module reads line ends itself (a lone \r included)
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise LoadError(f"not a readable CSV file: {error}") from error
    header = {cell.strip().lower() for cell in (rows[0] if rows else [])}
    if header & set(QUESTION_FIELDS) and header & set(ANSWER_FIELDS):
        return load_faq(text, source=source, csv_format=True)
    pages = sheet_pages(source, path.stem, rows)
    if not pages:
        raise LoadError("no rows: the CSV file is empty")
    return pages
