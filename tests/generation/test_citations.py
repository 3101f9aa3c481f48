"""Citation parsing, sentence attribution and verification against the cited chunk."""

from __future__ import annotations

import pytest

from generation.citations import (
    answer_support,
    best_span,
    check_citations,
    cited_sentences,
    content_words,
    parse_citations,
    support,
)
from retrieval.types import Chunk, ScoredChunk

HITS = [
    ScoredChunk(Chunk(id="id1", text="The server listens on port 8080 by default.",
                      source="/s1.txt"), 0.9),
    ScoredChunk(Chunk(id="id2", text="Backups run nightly at two o'clock and keep 30 copies.",
                      source="/s2.txt"), 0.8),
    ScoredChunk(Chunk(id="id3", text="Passwords are reset from the account settings page.",
                      source="/s3.txt"), 0.7),
]  # fmt: skip


def test_parse_in_order_without_repeats() -> None:
    assert parse_citations("A [2]. B [1][2]. C [3, 4]. D [10]") == [2, 1, 3, 4, 10]
    assert parse_citations("no markers, [x] or [] here") == []


def test_sentences_carry_their_markers_including_ones_after_the_full_stop() -> None:
    text = "Port 8080 is used [1]. Backups run nightly. [2] Reset passwords in settings [3]."
    assert [(s.strip(), n) for s, n in cited_sentences(text)] == [
        ("Port 8080 is used [1].", [1]),
        ("Backups run nightly.", [2]),
        ("Reset passwords in settings [3].", [3]),
    ]


def test_content_words_drop_function_words_markers_and_fold_plurals() -> None:
    assert content_words("The backups [2] are kept for 30 days.") == {"backup", "kept", "30", "day"}


def test_support_is_the_share_of_claimed_words_in_the_evidence() -> None:
    assert support("backups run nightly", HITS[1].chunk.text) == 1.0
    assert support("backups run weekly", HITS[1].chunk.text) == pytest.approx(2 / 3)
    assert support("the of and", "anything") == 1.0  # nothing claimed


def test_supported_citations_pass_and_wrong_ones_are_flagged() -> None:
    text = "The server listens on port 8080 [1]. Backups run nightly [3]."
    check = check_citations(text, HITS, min_support=0.5)
    assert not check.inferred
    assert [c.n for c in check.citations] == [1, 3]
    assert check.unsupported == (3,)  # source 3 is about passwords, not backups
    assert check.citations[0].support == 1.0
    assert check.citations[1].support is not None and check.citations[1].support < 0.5


def test_markers_outside_the_sources_are_dropped_and_reported() -> None:
    check = check_citations("Port 8080 [1], see [9] and [0].", HITS)
    assert [(c.n, c.chunk_id, c.source) for c in check.citations] == [(1, "id1", "/s1.txt")]
    assert check.invalid == (9, 0)


def test_uncited_answers_get_the_sources_that_best_support_them() -> None:
    check = check_citations("Reset your password on the account settings page.", HITS, fallback=2)
    assert check.inferred
    assert [c.n for c in check.citations] == [3]  # not retrieval order: support order


def test_each_uncited_sentence_gets_its_best_supporting_source() -> None:
    text = "Backups run nightly and keep 30 copies. The server listens on port 8080."
    check = check_citations(text, HITS, min_support=0.5)
    assert check.inferred
    assert [(c.n, c.support) for c in check.citations] == [(2, 1.0), (1, 1.0)]


def test_an_uncited_answer_no_source_supports_gets_the_closest_one_only() -> None:
    check = check_citations("Bananas are yellow, and the server is fast.", HITS, min_support=0.5)
    assert check.inferred and [c.n for c in check.citations] == [1]


def test_a_refusal_gets_the_first_sources_as_retrieved() -> None:
    check = check_citations("", HITS, fallback=2)
    assert check.inferred and [c.n for c in check.citations] == [1, 2]


def test_every_citation_is_a_given_source_whatever_the_text() -> None:
    for text in ("[1][2][3][4]", "x [3] y [1]", "[2, 3, 7]", "", "none"):
        check = check_citations(text, HITS)
        assert {c.chunk_id for c in check.citations} <= {h.chunk.id for h in HITS}


def test_no_sources_no_citations() -> None:
    check = check_citations("[1]", [])
    assert check.citations == () and check.invalid == (1,)


def test_answer_support_over_all_sources() -> None:
    assert answer_support("Port 8080; backups nightly.", HITS) == 1.0
    assert answer_support("Bananas are yellow.", HITS) == 0.0


def test_a_citation_says_where_its_chunk_is() -> None:
    def cited(page: int | None, **metadata: str | int) -> str:
        chunk = Chunk(id="c", text="Port 8000.", source="/d", page=page, metadata=metadata)
        [citation] = check_citations("Port 8000 [1].", [ScoredChunk(chunk, 0.5)]).citations
        assert citation.to_dict()["location"] == citation.location
        return citation.location

    assert cited(3, section="Install > Linux") == "page 3 · Install > Linux"
    assert cited(None, section="Install") == "Install"
    assert cited(4, slide=4, section="Pricing") == "slide 4 · Pricing"
    assert cited(None, sheet="Prices", rows="12-24", section="Prices") == "sheet Prices, rows 12-24"
    assert cited(None) == ""


def test_the_passage_sentence_backing_the_claim_is_highlighted() -> None:
    passage = "Ragqa reads PDFs. Backups run nightly at two.\nKeys are revoked by admins."
    start, end = best_span("When do backups run? Nightly [1].", passage) or (0, 0)
    assert passage[start:end] == "Backups run nightly at two."
    start, end = best_span("Who revokes keys?", passage) or (0, 0)
    assert passage[start:end] == "Keys are revoked by admins."
    assert best_span("Nothing in common here", passage) is None


def test_each_citation_highlights_what_backs_its_sentence() -> None:
    two = ScoredChunk(Chunk(id="id4", text="Logs rotate weekly. Backups run nightly at two.",
                            source="/s4.txt"), 0.6)  # fmt: skip
    check = check_citations("Backups run nightly [1].", [two])
    (citation,) = check.citations
    assert citation.highlight is not None
    assert two.chunk.text[slice(*citation.highlight)] == "Backups run nightly at two."
    assert citation.to_dict()["highlight"] == list(citation.highlight)
    inferred = check_citations("Logs rotate every week.", [two]).citations[0]
    assert inferred.highlight is not None
    assert two.chunk.text[slice(*inferred.highlight)] == "Logs rotate weekly."
