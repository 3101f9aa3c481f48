"""Spreadsheets built with openpyxl and CSV files that are not FAQ files, read by ingest.sheets."""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path

import pytest

from ingest.formats import load
from ingest.loaders import LoadError
from ingest.pipeline import Ingestor
from ingest.sheets import GROUP_CHARS
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from tests.fakes import FakeEmbedder

openpyxl = pytest.importorskip("openpyxl")


def workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    prices = book.active
    prices.title = "Prices"
    prices.append(["plan", "monthly price", "seats", "since"])
    for n in range(1, 61):
        prices.append([f"plan-{n}", 10.0 * n, n, datetime.datetime(2024, 1, n % 28 + 1)])
    contacts = book.create_sheet("Contacts")
    contacts.append([None])
    contacts.append(["team", "e-mail"])
    contacts.append(["billing", "billing@example.com"])
    book.save(path)
    return path


def test_each_sheet_is_a_section_of_pages_that_read_alone(tmp_path: Path) -> None:
    pages = load(workbook(tmp_path / "book.xlsx"), source="b")
    prices = [p for p in pages if p.metadata["sheet"] == "Prices"]
    assert len(prices) > 2 and all(p.sections == ((0, "Prices"),) for p in prices)
    assert all(len(p.text) <= GROUP_CHARS for p in prices)
    assert prices[0].text.splitlines()[0] == (
        "plan: plan-1; monthly price: 10; seats: 1; since: 2024-01-02"
    )
    assert all(line.startswith("plan: ") for p in prices for line in p.text.splitlines())
    ranges = [tuple(map(int, str(p.metadata["rows"]).split("-"))) for p in prices]
    assert ranges[0][0] == 2 and ranges[-1][1] == 61  # the header is row 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
    [contacts] = [p for p in pages if p.metadata["sheet"] == "Contacts"]
    assert contacts.text == "team: billing; e-mail: billing@example.com"
    assert contacts.metadata["rows"] == "3-3"


def test_a_question_finds_the_row_with_its_sheet_and_rows(tmp_path: Path) -> None:
    folder = tmp_path / "sheets"
    folder.mkdir()
    workbook(folder / "book.xlsx")
    (folder / "desks.csv").write_text("team,desk\nsupport,4th floor by the lifts\n")
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    report = Ingestor(index=index, embedder=FakeEmbedder()).ingest([folder], collection="sheets")
    assert (report.files_ok, report.files_failed) == (2, 0)
    [(chunk, _)] = index.keyword_query("sheets", "Where is the support desk?", 1)
    assert chunk.location == "sheet desks, rows 2-2"
    [(chunk, _)] = index.keyword_query("sheets", "Which team has billing@example.com?", 1)
    assert chunk.location == "sheet Contacts, rows 3-3"
    [(chunk, _)] = index.keyword_query("sheets", "monthly price of plan-37", 1)
    first, last = map(int, str(chunk.metadata["rows"]).split("-"))
    assert "plan: plan-37;" in chunk.text and first <= 38 <= last


def test_a_csv_without_question_and_answer_is_a_table(tmp_path: Path) -> None:
    (tmp_path / "ports.csv").write_text("service,port\napi,8000\nchat,8001\n")
    [page] = load(tmp_path / "ports.csv", source="p")
    assert page.text == "service: api; port: 8000\nservice: chat; port: 8001"
    assert page.metadata == {"sheet": "ports", "rows": "2-3"}
    (tmp_path / "faq.csv").write_text("Question,Answer\nWhy?,Because.\n")
    [pair] = load(tmp_path / "faq.csv", source="f")
    assert pair.text == "Q: Why?\nA: Because." and pair.metadata["row"] == 1
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(LoadError, match="empty"):
        load(tmp_path / "empty.csv")


def test_a_password_protected_workbook_opens_with_its_password(tmp_path: Path) -> None:
    from msoffcrypto.format.ooxml import OOXMLFile  # encrypts as Excel does (ECMA-376 agile)

    with workbook(tmp_path / "book.xlsx").open("rb") as plain, \
            (tmp_path / "locked.xlsx").open("wb") as locked:  # fmt: skip
        OOXMLFile(plain).encrypt("s3cret", locked)
    with pytest.raises(LoadError, match="password-protected Excel file: give its password"):
        load(tmp_path / "locked.xlsx")
    with pytest.raises(LoadError, match="wrong password"):
        load(tmp_path / "locked.xlsx", password="guess")
    opened = load(tmp_path / "locked.xlsx", password="s3cret")
    assert [p.text for p in opened] == [p.text for p in load(tmp_path / "book.xlsx")]
    # In a batch: the protected file fails alone, and opens with a passwords file entry.
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("locked.xlsx", "book.xlsx"):
        (folder / name).write_bytes((tmp_path / name).read_bytes())
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    ingestor = Ingestor(index=index, embedder=FakeEmbedder())
    report = ingestor.ingest([folder], collection="books")
    assert (report.files_ok, [Path(e.path).name for e in report.errors]) == (1, ["locked.xlsx"])
    report = ingestor.ingest([folder], collection="books", passwords={"locked.xlsx": "s3cret"})
    assert (report.files_ok, report.files_failed, report.files_unchanged) == (2, 0, 1)


def test_protected_and_broken_workbooks_say_why(tmp_path: Path) -> None:
    (tmp_path / "old.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    with pytest.raises(LoadError, match=r"an old binary \.xls file named \.xlsx"):
        load(tmp_path / "old.xlsx")
    (tmp_path / "cut.xlsx").write_bytes(b"PK\x03\x04 and then nothing")
    with pytest.raises(LoadError, match="not an Excel file"):
        load(tmp_path / "cut.xlsx")
