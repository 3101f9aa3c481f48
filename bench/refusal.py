"""Refusals on ClapNQ dev: the share of unanswerable questions that rag answers refuse, and the
share of answerable ones refused by mistake, by reason (low retrieval score, the model's own
refusal, an answer the sources do not support). The 593 dev passages are the collection."""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.abstention import _questions, write_passages
from bench.report import Result
from generation.rag import Request
from server.settings import Settings
from server.wiring import Services

THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def clapnq_refusals(
    services: Services,
    data: Path,
    limit: int | None,
    tmp: Path,
    modes: Sequence[str] = ("rag",),
    curve: bool = True,
) -> dict[str, float]:
    """Refusal rates on ClapNQ dev answerable and unanswerable questions, by reason, per mode.

    With `curve`, rag answers are made non-strict so each one's support is kept; the strict
    refusal at any threshold t is then "support < t", which gives the whole curve from one
    pass. Without it, answers are made as the server makes them.
    """
    folder = data / "clapnq"
    corpus = write_passages(folder, tmp / "clapnq")
    services.ingestor.ingest([corpus], collection="clapnq")
    threshold = services.settings.answers.answer_min_support
    metrics: dict[str, float] = {}
    for mode, kind in itertools.product(modes, ("answerable", "unanswerable")):
        questions = _questions(folder / "dev" / f"clapnq_dev_{kind}.jsonl", limit)
        reasons: Counter[str] = Counter()
        supports: list[float] = []
        curved = curve and mode == "rag"
        strict = False if curved else None
        for question in questions:
            answer = services.rag.answer(Request(question, "clapnq", mode=mode, strict=strict))
            reasons[answer.refusal_reason or "answered"] += 1
            if not answer.refused and answer.support is not None:
                supports.append(answer.support)
        n = len(questions)
        prefix = f"clapnq_{mode}_{kind}" if modes != ("rag",) else f"clapnq_{kind}"
        unsupported = sum(s < threshold for s in supports) if curved else 0
        refused = sum(v for k, v in reasons.items() if k != "answered")
        metrics[f"{prefix}_questions"] = n
        metrics[f"{prefix}_refusal_rate"] = (refused + unsupported) / n
        for reason, count in sorted(reasons.items()):
            if reason != "answered":
                metrics[f"{prefix}_refused_{reason}"] = count / n
        if not curved:
            continue
        metrics[f"{prefix}_refused_unsupported_answer"] = unsupported / n
        metrics[f"{prefix}_mean_support"] = sum(supports) / max(len(supports), 1)
        for t in THRESHOLDS:
            metrics[f"{prefix}_refusal_at_support_{t:.1f}"] = (
                refused + sum(s < t for s in supports)
            ) / n
    return metrics


def short_answer_services(home: Path) -> Services:
    """Services with the default settings but answers of at most 96 tokens, models loaded.
    Any other RAGQA_GENERATOR__* (model, quantize) still applies."""
    settings = Settings(home=home, _env_file=None)
    short = settings.generator.model_copy(update={"max_new_tokens": 96})
    services = Services(settings.model_copy(update={"generator": short}))
    services.warm_up()
    return services


def run_refusal(*, data: Path, quick: bool) -> Result:
    """300 answerable and 300 unanswerable questions (30 + 30 with --quick)."""
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        services = short_answer_services(Path(tmp) / "home")
        settings = services.settings
        metrics = clapnq_refusals(services, data, 30 if quick else None, Path(tmp))
    return Result(metrics=metrics, context={
        "generator": settings.generator.model, "template": settings.answers.template,
        "min_score": settings.retrieval.min_score,
        "answer_min_support": settings.answers.answer_min_support,
        "quantize": settings.generator.quantize,
    })  # fmt: skip
