"""OpenDocument spreadsheets and presentations written by LibreOffice (tests/ingest/office/
README.md says how), read as their Excel and PowerPoint counterparts are."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ingest.formats import load
from ingest.loaders import LoadError
from ingest.pipeline import Ingestor
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from tests.fakes import FakeEmbedder
from tests.ingest.test_sheets import workbook

OFFICE = Path(__file__).resolve().parent / "office"


def test_a_libreoffice_spreadsheet_reads_as_the_same_excel_workbook(tmp_path: Path) -> None:
    ods = load(OFFICE / "book.ods", source="b")
    xlsx = load(workbook(tmp_path / "book.xlsx"), source="b")
    assert [(p.text, dict(p.metadata), p.sections) for p in ods] == [
        (p.text, dict(p.metadata), p.sections) for p in xlsx
    ]
    assert ods[-1].metadata == {"sheet": "Contacts", "rows": "3-3"}  # row 1 left empty


def test_a_libreoffice_deck_is_a_page_per_slide_with_title_and_notes() -> None:
    [launch] = load(OFFICE / "talk.odp", source="t")
    assert launch.number == 1 and launch.sections == ((0, "Launch"),)
    assert launch.text == "Launch\n\nShip on Friday.\n\nNotes: Mention the rollback plan."
    slides = load(OFFICE / "ingesting.odp", source="d")
    titled = {page.sections[0][1]: page for page in slides if page.sections}
    assert {"File types", "Chunks", "Deleting"} <= set(titled)
    assert [p.number for p in slides] == sorted(p.number for p in slides)
    pdf_row = "type: PDF; extensions: .pdf; how it is read: the text layer"
    assert pdf_row in titled["File types"].text


def test_questions_find_the_slide_and_the_rows(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    for name in ("ingesting.odp", "book.ods"):
        (folder / name).write_bytes((OFFICE / name).read_bytes())
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    report = Ingestor(index=index, embedder=FakeEmbedder()).ingest([folder], collection="open")
    assert (report.files_ok, report.files_failed) == (2, 0)
    [(slide, _)] = index.keyword_query("open", "Does pypdf keep page numbers?", 1)
    assert slide.source.endswith("ingesting.odp") and slide.location == "slide 3 · File types"
    [(rows, _)] = index.keyword_query("open", "Which team has billing@example.com?", 1)
    assert rows.location == "sheet Contacts, rows 3-3"


def test_a_wrong_or_broken_opendocument_file_says_what_it_is(tmp_path: Path) -> None:
    (tmp_path / "deck.ods").write_bytes((OFFICE / "talk.odp").read_bytes())
    with pytest.raises(LoadError, match="not an OpenDocument spreadsheet"):
        load(tmp_path / "deck.ods")
    (tmp_path / "old.odp").write_bytes(b"\xd0\xcf\x11\xe0 a .ppt renamed")
    with pytest.raises(LoadError, match=r"an old \.ppt or \.sxi\? save it as \.odp"):
        load(tmp_path / "old.odp")
    with zipfile.ZipFile(tmp_path / "empty.ods", "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
    with pytest.raises(LoadError, match="not a readable OpenDocument file"):
        load(tmp_path / "empty.ods")
