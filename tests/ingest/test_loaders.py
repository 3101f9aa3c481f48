"""Loading text, markdown and real PDFs into pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import LoadError, load


def test_text_and_markdown_are_one_page(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\nSome *markdown* text.\n", encoding="utf-8")
    [page] = load(tmp_path / "a.md", source="a")
    assert page.number is None
    assert page.text.startswith("# Title")
    assert page.source == "a"


def test_legacy_encoding_is_read(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_bytes("café crème".encode("latin-1"))
    assert load(tmp_path / "old.txt")[0].text == "café crème"


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes("\ufeffhello".encode())
    assert load(tmp_path / "bom.txt")[0].text == "hello"


def test_unsupported_and_binary_files_say_why(tmp_path: Path) -> None:
    (tmp_path / "x.docx").write_bytes(b"PK\x03\x04")
    with pytest.raises(LoadError, match=r"unsupported file type '\.docx'"):
        load(tmp_path / "x.docx")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02")
    with pytest.raises(LoadError, match="binary"):
        load(tmp_path / "bin.txt")


def test_real_pdf_pages_are_numbered(shared_data: Path) -> None:
    pages = load(shared_data / "debian_faq" / "debian-faq.en.pdf")
    assert len(pages) == 73
    assert [p.number for p in pages[:3]] == [1, 2, 3]
    assert "Debian" in pages[0].text
    assert sum(len(p.text) for p in pages) > 100_000


def test_corrupt_pdf_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(LoadError, match="PDF"):
        load(tmp_path / "bad.pdf")


def test_pdf_without_text_layer_is_reported(shared_data: Path) -> None:
    import json

    catalog = shared_data / "pdf_torture" / "catalog.jsonl"
    rows = [json.loads(line) for line in catalog.read_text(encoding="utf-8").splitlines()]
    image_only = min(
        (
            r
            for r in rows
            if "image_only_no_text_layer" in r["tags"]
            and "needs_password" not in r["tags"]
            and not r["pypdf_error"]
        ),
        key=lambda r: r["bytes"],
    )
    path = shared_data / "pdf_torture" / image_only["file"]
    with pytest.raises(LoadError, match="no text layer"):
        load(path)
