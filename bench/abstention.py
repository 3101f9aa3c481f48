"""The abstention signal on ClapNQ dev: how well the best retrieval score separates answerable
questions from unanswerable ones, as a refusal trade-off curve over `min_score` thresholds.

The 593 dev passages are ingested through the real pipeline (one file per passage). For each
threshold t: refusal rate on the 300 unanswerable questions (best score < t) against the false
refusal rate on the 300 answerable ones.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.report import Result
from server.settings import Settings
from server.wiring import Services

THRESHOLDS = [round(0.20 + 0.05 * i, 2) for i in range(13)]  # 0.20 .. 0.80


def _questions(path: Path, limit: int | None) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r["input"] for r in rows][:limit]


def save_passages(passages: Iterable[dict[str, Any]], corpus: Path, name_by: str) -> Path:
    """ClapNQ passages as one text file each (title, blank line, text) in `corpus`, named by
    their `name_by` field."""
    corpus.mkdir(parents=True, exist_ok=True)
    for passage in passages:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", passage[name_by])[:60] or "passage"
        (corpus / f"{name}.txt").write_text(f"{passage['title']}\n\n{passage['text']}\n")
    return corpus


def write_passages(folder: Path, corpus: Path) -> Path:
    """The 593 ClapNQ dev passages, as files in `corpus`."""
    lines = (folder / "corpus_from_dev_passages.jsonl").read_text().splitlines()
    return save_passages((json.loads(line) for line in lines), corpus, "doc_id")


def run_abstention(*, data: Path, quick: bool) -> Result:
    """Best-score distributions and the refusal curve; picks the threshold that refuses the
    most unanswerable questions while falsely refusing at most 10% of answerable ones."""
    folder = data / "clapnq"
    limit = 60 if quick else None
    answerable = _questions(folder / "dev" / "clapnq_dev_answerable.jsonl", limit)
    unanswerable = _questions(folder / "dev" / "clapnq_dev_unanswerable.jsonl", limit)
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        corpus = write_passages(folder, Path(tmp) / "passages")
        services = Services(Settings(home=Path(tmp) / "home", _env_file=None))
        services.ingestor.ingest([corpus], collection="clapnq")

        def best(question: str) -> float:
            return max(h.score for h in services.retriever.search(question, collection="clapnq"))

        good = [best(q) for q in answerable]
        bad = [best(q) for q in unanswerable]
    metrics: dict[str, float] = {
        "answerable": len(good),
        "unanswerable": len(bad),
        "mean_best_score_answerable": sum(good) / len(good),
        "mean_best_score_unanswerable": sum(bad) / len(bad),
    }
    chosen, chosen_refusal = 0.0, 0.0
    for t in THRESHOLDS:
        refused = sum(s < t for s in bad) / len(bad)
        false_refused = sum(s < t for s in good) / len(good)
        metrics[f"t{t:.2f}_refusal_unanswerable"] = refused
        metrics[f"t{t:.2f}_false_refusal_answerable"] = false_refused
        if false_refused <= 0.10 and refused >= chosen_refusal:
            chosen, chosen_refusal = t, refused
    metrics["chosen_min_score"] = chosen
    metrics["chosen_refusal_unanswerable"] = chosen_refusal
    return Result(
        metrics=metrics,
        context={
            "mode": services.settings.retrieval.mode,
            "rule": "largest refusal on unanswerable with false refusal <= 10%",
        },
    )
