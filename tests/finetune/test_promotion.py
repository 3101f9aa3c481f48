"""The promote gate: an adapter that regresses against the base model is refused."""

from __future__ import annotations

from finetune.promotion import Margins, gate
from finetune.scoring import Question, Scored, token_f1

QUESTIONS = [Question("q1", "port 8000"), Question("q2", "ten megabytes"),
             Question("q3", "", answerable=False), Question("q4", "smollm2")]  # fmt: skip


def scored(answers: list[str | None]) -> list[Scored]:
    """None is a refusal."""
    return [Scored(q, a or "", a is None, token_f1(a or "", q.gold) if q.answerable else 0.0, 0.1)
            for q, a in zip(QUESTIONS, answers, strict=True)]  # fmt: skip


def test_an_adapter_as_good_or_better_passes() -> None:
    base = scored(["port 8000", "no idea", "made up", "smollm2"])
    tuned = scored(["port 8000", "ten megabytes", None, "smollm2"])
    verdict = gate(base, tuned, Margins())
    assert verdict.passed and verdict.reasons == []
    assert verdict.adapter["token_f1"] > verdict.base["token_f1"]
    assert verdict.adapter["refusal_accuracy"] == 1.0 and (verdict.known, verdict.lost) == (2, 0)


def test_losing_a_question_the_base_model_knew_is_refused_even_with_better_f1() -> None:
    base = scored(["port 8000", "no idea", "made up", "smollm2"])
    tuned = scored(["port 8000", "ten megabytes", None, "qwen"])  # forgot a known fact
    verdict = gate(base, tuned, Margins(f1=1.0, refusal=1.0))
    assert not verdict.passed and verdict.lost == 1
    assert "1 of the 2 questions the base model answered right" in verdict.reasons[0]
    assert gate(base, tuned, Margins(f1=1.0, refusal=1.0, known=0.5)).passed


def test_lower_f1_or_refusal_accuracy_beyond_the_margin_is_refused() -> None:
    base = scored(["port 8000", "ten megabytes", None, "smollm2"])
    tuned = scored(["port 8000", "ten", "made up", "smollm2"])
    verdict = gate(base, tuned, Margins(known=1.0))
    assert not verdict.passed and len(verdict.reasons) == 2
    assert "token F1" in verdict.reasons[0] and "refusal accuracy" in verdict.reasons[1]
    assert gate(base, tuned, Margins(f1=0.5, refusal=0.5, known=1.0)).passed
