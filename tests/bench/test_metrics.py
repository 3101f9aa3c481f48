"""The benchmark metrics themselves, against hand-computed references."""

from __future__ import annotations

import math

import pytest

from bench.answers import normalise, token_f1
from bench.beir import _sentences, ndcg_at_10
from bench.report import percentile


def test_ndcg_at_10() -> None:
    assert ndcg_at_10(["a", "b"], {"a"}) == 1.0
    assert ndcg_at_10(["x", "a"], {"a"}) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_10(["x", "a", "b"], {"a", "b"}) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    )
    assert ndcg_at_10([f"x{i}" for i in range(10)] + ["a"], {"a"}) == 0.0
    assert ndcg_at_10(["a"], set()) == 0.0


def test_abstract_sentences_are_parsed_from_the_array_repr() -> None:
    field = "['First sentence.'\n 'It\\'s second.' \"Third, with 'quotes'.\"]"
    assert _sentences(field) == "First sentence. It's second. Third, with 'quotes'."


def test_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([3.0], 95) == 3.0


def test_squad_normalisation_and_token_f1() -> None:
    assert normalise("The Cat, sat!") == "cat sat"
    assert token_f1("the cat sat", "A cat sat.") == 1.0
    # pred: cat sat down (3), gold: cat sat (2), common 2: P 2/3, R 1, F1 0.8
    assert token_f1("cat sat down", "cat sat") == pytest.approx(0.8)
    assert token_f1("", "cat") == 0.0 and token_f1("dog", "cat") == 0.0
