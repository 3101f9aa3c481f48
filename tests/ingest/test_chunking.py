"""Chunking keeps offsets, pages, sections and sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunking import split_pages
from ingest.formats import load
from ingest.loaders import Page


def words(text: str) -> int:
    return len(text.split())


def assert_offsets_rebuild(pages: list[Page], chunk_size: int, overlap: int) -> None:
    chunks = split_pages(pages, chunk_size=chunk_size, chunk_overlap=overlap, count_tokens=words)
    by_page = {(p.source, p.number): p.text for p in pages}
    for chunk in chunks:
        text = by_page[(chunk.source, chunk.page)]
        assert text[chunk.start : chunk.start + len(chunk.text)] == chunk.text
        assert words(chunk.text) <= chunk_size
    # Together the chunks cover every non-blank character of every page.
    for (source, number), text in by_page.items():
        covered = [False] * len(text)
        for c in chunks:
            if (c.source, c.page) == (source, number):
                covered[c.start : c.start + len(c.text)] = [True] * len(c.text)
        missed = "".join(ch for ch, hit in zip(text, covered, strict=True) if not hit)
        assert not missed.strip()


def test_offsets_rebuild_the_text_of_a_real_faq(shared_data: Path) -> None:
    pages = load(shared_data / "debian_faq" / "debian-faq.en.txt")
    assert_offsets_rebuild(pages, chunk_size=150, overlap=20)


def test_offsets_rebuild_the_pages_of_a_real_pdf(shared_data: Path) -> None:
    pages = load(shared_data / "debian_faq" / "debian-faq.en.pdf")[:10]
    assert_offsets_rebuild(pages, chunk_size=100, overlap=10)


def test_offsets_rebuild_real_html_and_rst(shared_data: Path) -> None:
    html = load(shared_data / "debian_faq" / "basic-defs.en.html")
    rst = load(shared_data / "python311_docs" / "rst_sources" / "tutorial" / "classes.rst.txt")
    assert rst[0].sections and rst[0].sections[0][1] == "Classes"
    assert_offsets_rebuild(html + rst, chunk_size=120, overlap=15)


def test_chunks_carry_sections() -> None:
    text = "# Guide\n\n" + "intro words " * 40 + "\n\n## Install\n\n" + "install words " * 40
    page = Page("/g.md", None, text, sections=((0, "Guide"), (text.index("## Install"),
                                                              "Guide > Install")))  # fmt: skip
    chunks = split_pages([page], chunk_size=30, chunk_overlap=0, count_tokens=words)
    first_install = next(c for c in chunks if c.text.startswith("## Install"))
    assert first_install.metadata["section"] == "Guide > Install"
    assert chunks[0].metadata["section"] == "Guide"


def test_faq_pairs_stay_whole() -> None:
    pairs = [Page("/f.jsonl", None, f"Q: question {i}?\nA: " + "answer " * 20, whole=True,
                  metadata={"row": i}) for i in range(3)]  # fmt: skip
    chunks = split_pages(pairs, chunk_size=50, chunk_overlap=5, count_tokens=words)
    assert [c.text for c in chunks] == [p.text for p in pairs]
    assert [c.metadata["row"] for c in chunks] == [0, 1, 2]


def test_ids_depend_on_version_and_are_stable() -> None:
    pages = [Page("/a.pdf", 1, "alpha " * 200), Page("/a.pdf", 2, "beta " * 200)]
    first = split_pages(pages, chunk_size=50, chunk_overlap=5, version="v1", count_tokens=words)
    again = split_pages(pages, chunk_size=50, chunk_overlap=5, version="v1", count_tokens=words)
    other = split_pages(pages, chunk_size=50, chunk_overlap=5, version="v2", count_tokens=words)
    assert [c.id for c in first] == [c.id for c in again]
    assert not {c.id for c in first} & {c.id for c in other}
    assert {c.page for c in first} == {1, 2}
    assert all(c.version == "v1" for c in first)
    assert first[0].metadata["filename"] == "a.pdf"


def test_character_sizes_without_a_tokenizer() -> None:
    chunks = split_pages([Page("/a", None, "word " * 500)], chunk_size=100, chunk_overlap=10)
    assert max(len(c.text) for c in chunks) <= 100


def test_blank_pages_give_no_chunks() -> None:
    assert split_pages([Page("/a", None, " \n\n  ")], chunk_size=100, chunk_overlap=10) == []


def test_overlap_must_be_below_size() -> None:
    with pytest.raises(ValueError, match="chunk_overlap"):
        split_pages([Page("/a", None, "x")], chunk_size=100, chunk_overlap=100)
