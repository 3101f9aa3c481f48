"""BM25 keyword index on SQLite FTS5."""

from __future__ import annotations

from pathlib import Path

from retrieval.filters import SearchFilter
from retrieval.keyword import KeywordIndex, query_terms
from retrieval.types import Chunk


def chunk(i: int, text: str, source: str = "/a.txt", page: int | None = None, **meta: str) -> Chunk:
    return Chunk(id=f"c{i}", text=text, source=source, page=page, start=i, version="v",
                 metadata={"filename": Path(source).name, **meta})  # fmt: skip


def test_bm25_ranks_rare_terms_and_stems(tmp_path: Path) -> None:
    index = KeywordIndex(path=tmp_path / "kw.sqlite")
    index.add("docs", [
        chunk(1, "Installing packages with apt is easy."),
        chunk(2, "The kernel schedules processes; the kernel is Linux."),
        chunk(3, "Debian uses dpkg underneath apt."),
    ])  # fmt: skip
    hits = index.search("docs", "How do I install a package?", 3)
    assert hits[0][0].id == "c1"  # install ~ installing, package ~ packages
    assert hits[0][1] > 0
    assert [c.id for c, _ in index.search("docs", "dpkg", 3)] == ["c3"]
    assert index.search("docs", "the of and", 3) == []  # only stop words
    assert index.search("nothing", "apt", 3) == []


def test_round_trip_update_delete_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "kw.sqlite"
    index = KeywordIndex(path=path)
    original = chunk(1, "alpha beta", page=3, section="Intro")
    index.add("docs", [original])
    index.add("docs", [original])  # same id: replaced, not duplicated
    assert index.count("docs") == 1
    [(found, _)] = KeywordIndex(path=path).search("docs", "alpha", 5)
    assert found == original
    index.delete("docs", ["c1"])
    assert index.count("docs") == 0
    index.add("docs", [original])
    index.drop("docs")
    assert index.count("docs") == 0 and index.rows("docs") == []


def test_filters_apply_inside_the_search() -> None:
    index = KeywordIndex()
    parts = [
        chunk(i, f"apt guide part {i}", f"/{i % 2}.pdf", i, section="Install" if i < 5 else "Other")
        for i in range(10)
    ]
    index.add("docs", parts)
    where = SearchFilter(sources=("/1.pdf",), page_min=3, page_max=7)
    hits = index.search("docs", "apt guide", 10, where=where)
    assert sorted(c.page or 0 for c, _ in hits) == [3, 5, 7]
    where = SearchFilter(section="Install", metadata={"filename": "0.pdf"})
    hits = index.search("docs", "apt", 10, where=where)
    assert sorted(c.page or 0 for c, _ in hits) == [0, 2, 4]


def test_query_terms() -> None:
    assert query_terms("What is the Debian FAQ? The FAQ!") == ["debian", "faq"]
