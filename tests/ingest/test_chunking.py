"""Chunking keeps offsets, pages and sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunking import split_pages
from ingest.loaders import Page, load


def assert_offsets_rebuild(pages: list[Page], chunk_size: int, overlap: int) -> None:
    chunks = split_pages(pages, chunk_size=chunk_size, chunk_overlap=overlap)
    by_page = {(p.source, p.number): p.text for p in pages}
    for chunk in chunks:
        text = by_page[(chunk.source, chunk.page)]
        assert text[chunk.start : chunk.start + len(chunk.text)] == chunk.text
        assert len(chunk.text) <= chunk_size
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
    assert_offsets_rebuild(pages, chunk_size=800, overlap=120)


def test_offsets_rebuild_the_pages_of_a_real_pdf(shared_data: Path) -> None:
    pages = load(shared_data / "debian_faq" / "debian-faq.en.pdf")[:10]
    assert_offsets_rebuild(pages, chunk_size=500, overlap=50)


def test_chunks_keep_page_numbers_and_stable_ids() -> None:
    pages = [Page("/a.pdf", 1, "alpha " * 200), Page("/a.pdf", 2, "beta " * 200)]
    first = split_pages(pages, chunk_size=300, chunk_overlap=30)
    again = split_pages(pages, chunk_size=300, chunk_overlap=30)
    assert [c.id for c in first] == [c.id for c in again]
    assert {c.page for c in first} == {1, 2}
    assert len({c.id for c in first}) == len(first)
    assert first[0].metadata["filename"] == "a.pdf"


def test_blank_pages_give_no_chunks() -> None:
    assert split_pages([Page("/a", None, " \n\n  ")], chunk_size=100, chunk_overlap=10) == []


def test_overlap_must_be_below_size() -> None:
    with pytest.raises(ValueError, match="chunk_overlap"):
        split_pages([Page("/a", None, "x")], chunk_size=100, chunk_overlap=100)
