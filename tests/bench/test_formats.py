"""The fidelity measure of `bench ingest`'s per-format table."""

from __future__ import annotations

from bench.formats import _overlap, _words


def test_recall_and_precision_count_words_with_their_repeats() -> None:
    source = _words("Plan: basic; price 10. Plan: pro; price 20.")
    assert _overlap(source, "plan basic price 10 plan pro price 20") == (1.0, 1.0)
    recall, precision = _overlap(source, "plan basic price 10 extra words")
    assert (recall, precision) == (4 / 8, 4 / 6)
    assert _overlap(source, "") == (0.0, 0.0)
