"""Out of domain, for `bench arena`: the covid_qa RAFT adapter on collections it never saw.

ClapNQ dev (answerable and unanswerable questions over its 593 passages): does finetuned_rag
refuse what the passages cannot answer without refusing what they can? The Python FAQ: does
the adapter lose token F1 against the base model in rag mode (the promote gate's question)?
Each is an arena of its own (resumable, with report.json and report.html).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.abstention import save_passages, write_passages
from bench.answer_sets import python_faq
from finetune.arena import Arena, Ask, build_report
from finetune.report import write_report
from finetune.scoring import Question
from server.wiring import Services

MODES = ["extractive", "rag", "finetuned_rag"]
Asker = Callable[[str], Ask]  # collection -> how its questions are answered in a mode


def clapnq_questions(folder: Path, per_kind: int) -> tuple[list[Question], list[dict[str, Any]]]:
    """`per_kind` answerable and `per_kind` unanswerable dev questions, alternating (so a cut
    run is still balanced), and their rows."""
    kinds = []
    for kind in ("answerable", "unanswerable"):
        lines = (folder / "dev" / f"clapnq_dev_{kind}.jsonl").read_text(encoding="utf-8")
        kinds.append([json.loads(line) for line in lines.splitlines() if line][:per_kind])
    questions, rows = [], []
    for pair in zip(*kinds, strict=False):
        for row in pair:
            gold = (row.get("output") or [{}])[0].get("answer", "")
            questions.append(Question(row["input"], gold, answerable=bool(gold.strip())))
            rows.append(row)
    return questions, rows


def _compare(
    services: Services, name: str, questions: list[Question], asker: Asker, folder: Path,
    setting: dict[str, Any], *, restart: bool, progress: bool,
) -> dict[str, Any]:  # fmt: skip
    arena = Arena(folder / name, questions, MODES, setting | {"set": name})
    rows = arena.run(asker(name), restart=restart or not arena.resumable(), progress=progress)
    report, intervals = build_report(rows, MODES, setting | {"set": name})
    write_report(folder / name, report, rows, intervals)
    return report


def _difference(report: dict[str, Any], a: str, b: str) -> tuple[float, list[float]]:
    """F1 of mode a minus mode b, with its 95% interval."""
    for pair in report["pairs"]:
        if (pair["a"], pair["b"]) == (a, b):
            return pair["f1_difference"], pair["ci95"]
        if (pair["a"], pair["b"]) == (b, a):
            low, high = pair["ci95"]
            return -pair["f1_difference"], [-high, -low]
    return 0.0, [0.0, 0.0]


def out_of_domain(
    services: Services, data: Path, work: Path, asker: Asker, folder: Path, *,
    per_set: int, setting: dict[str, Any], quick: bool, restart: bool,
) -> dict[str, float]:  # fmt: skip
    """Ingest ClapNQ and the Python FAQ, compare extractive, rag and finetuned_rag on each;
    the metrics `bench arena` reports."""
    metrics: dict[str, float] = {}
    clapnq, rows = clapnq_questions(data / "clapnq", per_set)
    corpus = work / "clapnq-passages"
    if not corpus.exists():
        if quick:  # only the questions' own passages: the 593 take minutes to embed
            save_passages((p for row in rows for p in row["passages"]), corpus, "title")
        else:
            write_passages(data / "clapnq", corpus)
    services.ingestor.ingest([corpus], collection="clapnq")
    report = _compare(services, "clapnq", clapnq, asker, folder, setting,
                      restart=restart, progress=not quick)  # fmt: skip
    for mode, row in report["modes"].items():
        for key in ("token_f1", "unanswerable_refused", "answerable_refused"):
            metrics[f"clapnq_{mode}_{key}"] = row[key]
    metrics["clapnq_questions"] = len(clapnq)

    faq = python_faq(data, per_set)  # at most 172: three are few-shot examples
    services.ingestor.ingest(faq.paths, collection="python_faq")
    questions = [Question(item.question, item.gold) for item in faq.items]
    report = _compare(services, "python_faq", questions, asker, folder, setting,
                      restart=restart, progress=not quick)  # fmt: skip
    for mode, row in report["modes"].items():
        metrics[f"python_faq_{mode}_token_f1"] = row["token_f1"]
    difference, (low, high) = _difference(report, "finetuned_rag", "rag")
    metrics |= {"python_faq_questions": len(questions),
                "python_faq_f1_finetuned_rag_minus_rag": difference,
                "python_faq_f1_finetuned_rag_minus_rag_ci_low": low,
                "python_faq_f1_finetuned_rag_minus_rag_ci_high": high}  # fmt: skip
    return metrics
