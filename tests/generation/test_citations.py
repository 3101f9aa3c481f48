"""Citation parsing and resolution."""

from __future__ import annotations

from generation.citations import parse_citations, resolve_citations
from retrieval.types import Chunk, ScoredChunk

HITS = [
    ScoredChunk(Chunk(id=f"id{i}", text=f"text {i}", source=f"/s{i}.txt"), 1.0 - i / 10)
    for i in range(1, 5)
]


def test_parse_in_order_without_repeats() -> None:
    assert parse_citations("A [2]. B [1][2]. C [3, 4]. D [10]") == [2, 1, 3, 4, 10]
    assert parse_citations("no markers, [x] or [] here") == []


def test_every_citation_is_a_given_source() -> None:
    citations, inferred = resolve_citations("Yes [2], see [9] and [0].", HITS)
    assert not inferred
    assert [(c.n, c.chunk_id, c.source) for c in citations] == [(2, "id2", "/s2.txt")]


def test_nothing_cited_falls_back_to_best_sources_flagged() -> None:
    citations, inferred = resolve_citations("An answer without markers.", HITS, fallback=2)
    assert inferred
    assert [c.n for c in citations] == [1, 2]
    assert citations[0].text == "text 1"


def test_no_sources_no_citations() -> None:
    assert resolve_citations("[1]", []) == ((), True)
