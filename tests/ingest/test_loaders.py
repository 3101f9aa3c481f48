"""Loading every supported format into normalised pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.cleaning import normalize_text
from ingest.formats import load
from ingest.loaders import LoadError


def test_text_and_markdown_are_one_page_with_sections(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\nSome *markdown* text.\n", encoding="utf-8")
    [page] = load(tmp_path / "a.md", source="a")
    assert page.number is None
    assert page.text.startswith("# Title")
    assert page.source == "a"
    assert page.sections == ((0, "Title"),)


def test_normalisation() -> None:
    raw = "Cafe\u0301\u00a0bar\u200b\r\nline\x07two\ufeff\fnext\u00adword\udb62"
    assert normalize_text(raw) == "Café bar\nlinetwo\nnextword"


def test_legacy_encoding_and_bom(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_bytes("café crème".encode("latin-1"))
    assert load(tmp_path / "old.txt")[0].text == "café crème"
    (tmp_path / "bom.txt").write_bytes("\ufeffhello".encode())
    assert load(tmp_path / "bom.txt")[0].text == "hello"


def test_unsupported_and_binary_files_say_why(tmp_path: Path) -> None:
    (tmp_path / "x.pages").write_bytes(b"PK\x03\x04")
    with pytest.raises(LoadError, match=r"unsupported file type '\.pages'"):
        load(tmp_path / "x.pages")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02")
    with pytest.raises(LoadError, match="binary"):
        load(tmp_path / "bin.txt")


def test_faq_jsonl_and_csv_pairs(tmp_path: Path) -> None:
    rows = [
        {"question": "How?", "answer": "Like this."},
        {"Question": "Why?", "Answer": "Because."},
        {"question": "", "answer": "orphan"},
    ]
    (tmp_path / "faq.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    pages = load(tmp_path / "faq.jsonl")
    assert [p.text for p in pages] == ["Q: How?\nA: Like this.", "Q: Why?\nA: Because."]
    assert all(p.whole for p in pages)
    assert pages[1].metadata == {"row": 2, "question": "Why?"}
    (tmp_path / "faq.csv").write_text('q,a\n"Where, exactly?",Here\n')
    assert load(tmp_path / "faq.csv")[0].text == "Q: Where, exactly?\nA: Here"


def test_faq_without_pairs_says_which_fields(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(LoadError, match="question field"):
        load(tmp_path / "data.jsonl")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(LoadError, match="line 1 is not valid JSON"):
        load(tmp_path / "bad.jsonl")


def test_html_charset_and_sections(shared_data: Path) -> None:
    [page] = load(shared_data / "debian_faq" / "basic-defs.en.html")
    assert "Debian GNU/Linux is a particular distribution" in " ".join(page.text.split())
    assert "\u00a0" not in page.text
    assert any("What is Debian GNU/Linux?" in title for _, title in page.sections)


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


def _torture(shared_data: Path, tag: str, exclude: str = "needs_password") -> Path:
    rows = [json.loads(line) for line in
            (shared_data / "pdf_torture" / "catalog.jsonl").read_text().splitlines()]  # fmt: skip
    row = min((r for r in rows if tag in r["tags"] and exclude not in r["tags"]
               and not r["pypdf_error"]), key=lambda r: r["bytes"])  # fmt: skip
    return shared_data / "pdf_torture" / row["file"]


def test_pdf_without_text_layer_is_reported(shared_data: Path) -> None:
    with pytest.raises(LoadError, match="no text layer"):
        load(_torture(shared_data, "image_only_no_text_layer"))


def test_encrypted_pdf_needs_its_password(shared_data: Path) -> None:
    folder = shared_data / "pdf_torture"
    passwords = json.loads((folder / "passwords.json").read_text())
    name, password = next((k, v) for k, v in passwords.items() if "user-password" in k)
    with pytest.raises(LoadError, match="needs a password"):
        load(folder / name)
    with pytest.raises(LoadError, match="does not open it"):
        load(folder / name, password="wrong")
    assert any(p.text.strip() for p in load(folder / name, password=password))
