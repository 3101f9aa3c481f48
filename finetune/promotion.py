"""The promote gate: an adapter becomes the default only if, on a frozen evaluation set, it
does not regress against the base model in the same retrieval setting: token F1 and refusal
accuracy within a margin, and no loss on the questions the base model already answered right
(fine-tuning on new facts is known to raise hallucination on known ones)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from finetune.scoring import Scored, summary


@dataclass(frozen=True)
class Margins:
    """How much worse than the base model an adapter may be and still be promoted."""

    f1: float = 0.02
    refusal: float = 0.02
    known: float = 0.0  # share of the base model's right answers the adapter may lose


@dataclass
class Verdict:
    """The gate's decision with the figures behind it."""

    passed: bool
    base: dict[str, float]
    adapter: dict[str, float]
    known: int  # questions the base model answered right
    lost: int  # ... of which the adapter got wrong
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape kept in the adapter's info."""
        return {"passed": self.passed, "base": self.base, "adapter": self.adapter,
                "known": self.known, "lost": self.lost, "reasons": self.reasons}  # fmt: skip


def gate(base: Sequence[Scored], tuned: Sequence[Scored], margins: Margins) -> Verdict:
    """Compare the adapter's answers with the base model's, question by question."""
    if len(base) != len(tuned) or any(
        a.question != b.question for a, b in zip(base, tuned, strict=True)
    ):
        raise ValueError("the base and adapter answers must be to the same questions, in order")
    before, after = summary(base), summary(tuned)
    known = [i for i, s in enumerate(base) if s.correct]
    lost = sum(not tuned[i].correct for i in known)
    reasons = []
    if after["token_f1"] < before["token_f1"] - margins.f1:
        reasons.append(f"token F1 {after['token_f1']:.3f} is below the base model's "
                       f"{before['token_f1']:.3f} by more than {margins.f1}")  # fmt: skip
    if after["refusal_accuracy"] < before["refusal_accuracy"] - margins.refusal:
        reasons.append(f"refusal accuracy {after['refusal_accuracy']:.3f} is below the base "
                       f"model's {before['refusal_accuracy']:.3f} by more than "
                       f"{margins.refusal}")  # fmt: skip
    if lost > margins.known * len(known):
        reasons.append(f"it gets {lost} of the {len(known)} questions the base model answered "
                       f"right wrong (allowed: {margins.known:.0%})")  # fmt: skip
    return Verdict(not reasons, before, after, len(known), lost, reasons)
