"""Office files made by real tools (Debian's pandoc), read by ingest.office and
ingest.opendocument."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from ingest.formats import load
from ingest.isolation import run_isolated
from ingest.loaders import LoadError
from ingest.office import load_docx
from ingest.pipeline import Ingestor
from ingest.sheets import table_text
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from tests.fakes import FakeEmbedder

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Answered by the PDF row of docs/ingesting.md's table of formats.
PDF_QUESTION = "Which file type is read from the text layer of each page, with pypdf?"


def converted(page: Path, folder: Path, suffix: str, *options: str) -> Path:
    """`page` of docs/ converted by pandoc (skipped, with the reason, where it is missing)."""
    if shutil.which("pandoc") is None:
        pytest.skip("pandoc is not installed: `make setup` installs it when run as root "
                    "(apt-get install pandoc)")  # fmt: skip
    out = folder / f"{page.stem}{suffix}"
    subprocess.run(["pandoc", str(page), *options, "-o", str(out)], check=True, timeout=120)
    return out


@pytest.mark.parametrize("suffix", [".docx", ".odt"])
def test_a_text_document_keeps_its_headings_and_reads_tables_as_rows(
    tmp_path: Path, suffix: str
) -> None:
    page = DOCS / "ingesting.md"
    [word] = load(converted(page, tmp_path, suffix), source="w")
    [markdown] = load(page, source="m")
    assert [title for _, title in word.sections] == [title for _, title in markdown.sections]
    for offset, title in word.sections:  # each section starts at its heading's text
        assert word.text[offset:].startswith(title.split(" > ")[-1])
    assert "type: PDF; extensions: .pdf; how it is read: the text layer of each page" in word.text
    assert "| type |" not in word.text and "---" not in word.text


@pytest.mark.parametrize("suffix", [".docx", ".odt"])
def test_a_question_retrieves_the_text_documents_section(tmp_path: Path, suffix: str) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    converted(DOCS / "ingesting.md", folder, suffix)
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    report = Ingestor(index=index, embedder=FakeEmbedder()).ingest([folder], collection="office")
    assert (report.files_ok, report.files_failed) == (1, 0)
    [(chunk, _)] = index.keyword_query("office", PDF_QUESTION, 1)
    assert "type: PDF; extensions: .pdf" in chunk.text
    # The section where the chunk starts: the table's, or the one before it when the chunk
    # takes in its heading.
    section = chunk.metadata["section"]
    assert section == "Ingesting documents > File types" or (
        section == "Ingesting documents" and "\n\nFile types\n\n" in chunk.text
    )


def test_tables_read_as_header_value_rows() -> None:
    rows = [["name", "port", ""], ["api", "8000", ""], ["", "", ""], ["chat", "", "x"]]
    assert table_text(rows) == "name: api; port: 8000\nname: chat; x"
    assert table_text([["only", "row"]]) == "only | row"


def zip_bomb(real: Path, bomb: Path) -> Path:
    """The Word file `real` with its document.xml replaced by 400 MB of empty paragraphs that
    compress to under 2 MB."""
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                out.writestr(item, source.read(item))
        with out.open("word/document.xml", "w") as document:
            document.write(b'<w:document xmlns:w="http://schemas.openxmlformats.org/'
                           b'wordprocessingml/2006/main"><w:body>')  # fmt: skip
            for _ in range(400):
                document.write(b"<w:p/>" * 174_763)
            document.write(b"</w:body></w:document>")
    assert bomb.stat().st_size < 2_000_000
    return bomb


def test_a_zip_bomb_named_docx_costs_its_own_file_only(tmp_path: Path) -> None:
    real = converted(DOCS / "ingesting.md", tmp_path, ".docx")
    bomb = zip_bomb(real, tmp_path / "bomb.docx")
    with pytest.raises(LoadError, match="more than 256 MB"):
        run_isolated(load_docx, bomb, source="b", timeout_s=60, memory_mb=256)
    assert load(real)  # the real file beside it still reads


def test_a_deck_is_a_page_per_slide_with_its_title_and_notes(tmp_path: Path) -> None:
    deck = converted(DOCS / "ingesting.md", tmp_path, ".pptx", "--slide-level=2")
    slides = load(deck, source="d")
    titled = {page.sections[0][1]: page for page in slides if page.sections}
    assert {"File types", "Chunks", "Deleting"} <= set(titled)
    assert [p.number for p in slides] == sorted(p.number for p in slides)  # the deck's order
    types = titled["File types"]
    assert types.text.startswith("File types\n\n")
    assert "type: PDF; extensions: .pdf; how it is read: the text layer" in types.text
    talk = tmp_path / "talk.md"
    talk.write_text("# Launch\n\nShip on Friday.\n\n::: notes\nMention the rollback plan.\n:::\n")
    [launch] = load(converted(talk, tmp_path, ".pptx"), source="t")
    assert launch.number == 1 and launch.sections == ((0, "Launch"),)
    assert launch.text == "Launch\n\nShip on Friday.\n\nNotes: Mention the rollback plan."


def test_a_question_finds_the_slide_it_is_answered_on(tmp_path: Path) -> None:
    folder = tmp_path / "decks"
    folder.mkdir()
    deck = converted(DOCS / "ingesting.md", folder, ".pptx", "--slide-level=2")
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    Ingestor(index=index, embedder=FakeEmbedder()).ingest([folder], collection="decks")
    [(chunk, _)] = index.keyword_query("decks", PDF_QUESTION, 1)
    [slide] = [p for p in load(deck) if p.sections and p.sections[0][1] == "File types"]
    assert chunk.page == slide.number and chunk.metadata["section"] == "File types"
    assert chunk.location == f"slide {slide.number} · File types"


def test_an_e_book_reads_its_chapters_in_order_with_their_headings(tmp_path: Path) -> None:
    chapters = [DOCS / "ingesting.md", DOCS / "asking.md"]
    book = tmp_path / "guide.epub"
    converted(chapters[0], tmp_path, ".epub")  # pandoc is there: make the two-chapter book
    subprocess.run(["pandoc", *map(str, chapters), "--metadata", "title=Guide", "-o", str(book)],
                   check=True, timeout=120)  # fmt: skip
    [page] = load(book, source="g")
    titles = [title for _, title in page.sections]
    expected = [title for chapter in chapters for _, title in load(chapter)[0].sections]
    assert titles == ["Guide", *expected]  # the title page, then each chapter's headings
    for offset, title in page.sections:
        assert page.text[offset:].startswith(title.split(" > ")[-1])
    assert page.text.index("Ingesting documents") < page.text.index("Asking questions")


_ODF = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
BROKEN: list[tuple[str, bytes | dict[str, str], str]] = [
    ("cut.docx", b"PK\x03\x04" + b"\x00" * 64, "not a Word file"),  # a zip's first bytes only
    ("other.docx", {"notes.txt": "a zip, but no Word document"}, "not a readable Word file"),
    ("old.pptx", b"\xd0\xcf\x11\xe0 an OLE2 .ppt renamed", r"not a PowerPoint file.*\.ppt\?"),
    ("old.odt", b"\xd0\xcf\x11\xe0 a .doc renamed", "not an OpenDocument file"),
    ("sheet.odt", {"content.xml": f'<office:document-content xmlns:office="{_ODF}"><office:body>'
                   "<office:spreadsheet/></office:body></office:document-content>"},
     "has no text body"),
    ("cut.odt", {"content.xml": "<office:document-content"}, "not a readable OpenDocument file"),
    ("cut.epub", b"PK\x03\x04", "not an EPUB file"),
    ("empty.epub", {"mimetype": "application/epub+zip"}, "not a readable EPUB file"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "message"), BROKEN)
def test_broken_files_say_why(
    tmp_path: Path, name: str, content: bytes | dict[str, str], message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            for member, text in content.items():
                archive.writestr(member, text)
    with pytest.raises(LoadError, match=message):
        load(path)


@pytest.mark.parametrize("suffix", [".docx", ".pptx"])
def test_a_password_protected_office_file_opens_with_its_password(
    tmp_path: Path, suffix: str
) -> None:
    from msoffcrypto.format.ooxml import OOXMLFile  # encrypts as Office does (ECMA-376 agile)

    plain = converted(DOCS / "ingesting.md", tmp_path, suffix)
    locked = tmp_path / f"locked{suffix}"
    with plain.open("rb") as source, locked.open("wb") as out:
        OOXMLFile(source).encrypt("s3cret", out)
    with pytest.raises(LoadError, match=r"password-protected \w+ file: give its password"):
        load(locked)
    assert [p.text for p in load(locked, password="s3cret")] == [p.text for p in load(plain)]


NOTES_MD = """# Release

The freeze starts on Thursday.[^1] [Priya signs off]{.comment-start id="0" author="Ana Lima" \
date="2026-11-02T10:00:00Z"}Check with Bo first.[]{.comment-end id="0"}

[^1]: Thursday at 17:00 Lisbon time, unless the tests are red.
"""
BODY = "Release\n\nThe freeze starts on Thursday. Check with Bo first."
FOOTNOTE = "\n\nFootnote 1: Thursday at 17:00 Lisbon time, unless the tests are red."
COMMENT = "\n\nComment by Ana Lima: Priya signs off"


@pytest.mark.parametrize("made_by", ["pandoc .docx", "LibreOffice .odt"])
def test_footnotes_and_comments_are_kept_or_dropped_by_the_settings(
    tmp_path: Path, made_by: str
) -> None:
    if made_by == "pandoc .docx":
        (tmp_path / "notes.md").write_text(NOTES_MD)
        path = converted(tmp_path / "notes.md", tmp_path, ".docx")
    else:  # pandoc writes no comments into .odt; this is the .docx above, saved by LibreOffice
        path = Path(__file__).resolve().parent / "office" / "notes.odt"
    [default] = load(path)  # footnotes kept, comments dropped
    [both] = load(path, comments=True)
    [neither] = load(path, footnotes=False)
    assert (default.text, both.text, neither.text) == (
        BODY + FOOTNOTE,
        BODY + FOOTNOTE + COMMENT,
        BODY,
    )
    # The pipeline's settings reach the isolated worker.
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / path.name).write_bytes(path.read_bytes())
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    Ingestor(index=index, embedder=FakeEmbedder(), footnotes=False, comments=True).ingest(
        [folder], collection="notes"
    )
    [(chunk, _)] = index.keyword_query("notes", "freeze Thursday", 1)
    assert chunk.text == BODY + COMMENT


def test_a_question_finds_the_e_books_chapter_section(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    folder.mkdir()
    converted(DOCS / "ingesting.md", folder, ".epub")
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    Ingestor(index=index, embedder=FakeEmbedder()).ingest([folder], collection="books")
    [(chunk, _)] = index.keyword_query("books", PDF_QUESTION, 1)
    assert "type: PDF; extensions: .pdf" in chunk.text
    assert chunk.location == "Ingesting documents > File types"
