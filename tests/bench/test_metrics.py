"""The benchmark metrics themselves, against hand-computed references."""

from __future__ import annotations

import json
import math

import pytest

from bench.answer_sets import DOCS_QUESTIONS, REPOSITORY, user_guide
from bench.answers import has_key_phrase, normalise, token_f1
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


@pytest.mark.parametrize(
    ("answer", "phrases", "holds"),
    [
        ("Set `RAGQA_SERVER__PORT` [1].", ["RAGQA_SERVER__PORT"], True),
        ("The server listens on port 8000 [1].", ["8000"], True),
        ("It listens on port 80001.", ["8000"], False),  # whole words only
        ("See source [4].", ["4"], False),  # a citation is not the number 4
        ("4 threads by default [2].", ["4"], True),
        ('It returns {"status": "ok"}.', ['"status": "ok"'], True),
        ("Run make run.", ["make test"], False),
        ("Rewrite follow-up questions to stand alone [1].", ["standalone", "stands alone"], False),
    ],
)
def test_key_phrases_match_whole_words_outside_citations(
    answer: str, phrases: list[str], holds: bool
) -> None:
    assert has_key_phrase(answer, phrases) is holds


def test_every_user_guide_question_has_a_key_phrase_its_page_holds() -> None:
    answers = user_guide(None)
    assert len(answers.items) >= 40 and len(answers.examples) == 3
    for line in DOCS_QUESTIONS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        page = (REPOSITORY / "docs" / row["file"]).read_text(encoding="utf-8")
        assert row["answer"] and has_key_phrase(page, row["key_phrases"]), row["question"]
