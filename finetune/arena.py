"""The arena: the same questions through every mode (same base model, same decoding), scored per
answer, summed up per mode, and each pair of modes compared with a paired bootstrap confidence
interval. Answers are appended to a file as they come, so a long run can be resumed."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from finetune.raft import resolve_source
from finetune.records import DatasetError
from finetune.scoring import MARKERS, Question, normalise, token_f1
from generation.types import Answer

Ask = Callable[[Question, str], Answer]  # (question, mode) -> answer


def score(
    index: int, question: Question, mode: str, answer: Answer, seconds: float
) -> dict[str, Any]:
    """One answer as a row of the arena: its text and every measure of it."""
    text = "" if answer.refused else MARKERS.sub(" ", answer.text)
    written = (
        not answer.refused and bool(MARKERS.search(answer.text)) and not answer.citations_inferred
    )
    cited = [c.source for c in answer.citations] if written else []
    gold = normalise(question.gold)
    right_source = [
        bool(question.source) and resolve_source(question.source, [s]) == s for s in cited
    ]
    usage = answer.context.prompt_tokens if answer.context else 0
    return {
        "i": index, "mode": mode, "question": question.question, "gold": question.gold,
        "answerable": question.answerable, "answer": answer.text, "refused": answer.refused,
        "refusal_reason": answer.refusal_reason, "adapter": answer.adapter,
        "exact_match": bool(gold) and normalise(text) == gold,
        "f1": token_f1(text, question.gold) if question.answerable else 0.0,
        "contained": bool(gold) and gold in normalise(text),
        "written_citation": written, "citations": len(cited),
        "precise_citations": sum(right_source) if question.source else None,
        "seconds": seconds, "tokens_in": usage, "tokens_out": answer.completion_tokens,
    }  # fmt: skip


class Arena:
    """One comparison run, kept in `folder` (answers.jsonl and run.json)."""

    def __init__(self, folder: Path, questions: Sequence[Question], modes: Sequence[str],
                 setting: dict[str, Any]) -> None:  # fmt: skip
        self.folder, self.questions, self.modes = folder, list(questions), list(modes)
        key = json.dumps([[q.__dict__ for q in self.questions], self.modes, setting],
                         sort_keys=True)  # fmt: skip
        self.key = hashlib.sha256(key.encode()).hexdigest()
        self.setting = setting

    @property
    def answers_path(self) -> Path:
        return self.folder / "answers.jsonl"

    def resumable(self) -> bool:
        """Whether the folder holds an earlier run of this same comparison."""
        marker = self.folder / "run.json"
        return marker.is_file() and json.loads(marker.read_text())["key"] == self.key

    def done(self, *, restart: bool = False) -> list[dict[str, Any]]:
        """The answers of an earlier run of the same comparison (to resume it)."""
        marker = self.folder / "run.json"
        if restart or not marker.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            self.answers_path.write_text("")
            marker.write_text(json.dumps({"key": self.key, "setting": self.setting}))
            return []
        if json.loads(marker.read_text())["key"] != self.key:
            raise DatasetError(
                f"{self.folder} holds a comparison of other questions, modes or settings: give "
                "another --report folder, or --restart to replace it."
            )
        rows = []
        for line in self.answers_path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # the last line of a killed run may be cut
                break
        return rows

    def run(
        self, ask: Ask, *, restart: bool = False, progress: bool = True
    ) -> list[dict[str, Any]]:
        """Every question through every mode, skipping what an earlier run answered."""
        import time

        rows = self.done(restart=restart)
        seen = {(r["i"], r["mode"]) for r in rows}
        todo = [(i, m) for i, m in itertools.product(range(len(self.questions)), self.modes)
                if (i, m) not in seen]  # fmt: skip
        with self.answers_path.open("a", encoding="utf-8") as out:
            for i, mode in tqdm(todo, desc="compare", unit="answer", disable=not progress):
                began = time.perf_counter()
                answer = ask(self.questions[i], mode)
                row = score(i, self.questions[i], mode, answer, time.perf_counter() - began)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
                rows.append(row)
        return sorted(rows, key=lambda r: (r["i"], self.modes.index(r["mode"])))


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def per_mode(rows: Sequence[dict[str, Any]], modes: Sequence[str]) -> dict[str, dict[str, float]]:
    """The arena's table: each mode's measures over its answers."""
    table = {}
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        answerable = [r for r in mine if r["answerable"]] or [{}]
        unanswerable = [r for r in mine if not r["answerable"]]
        given = [r for r in mine if not r["refused"]]
        cites = sum(r["citations"] for r in mine if r["precise_citations"] is not None)
        table[mode] = {
            "questions": len(mine),
            "exact_match": _mean(r.get("exact_match", 0) for r in answerable),
            "token_f1": _mean(r.get("f1", 0) for r in answerable),
            "containment": _mean(r.get("contained", 0) for r in answerable),
            "written_citation_rate": _mean(r["written_citation"] for r in given),
            "citation_precision": sum(r["precise_citations"] or 0 for r in mine) / cites
            if cites else 0.0,
            "unanswerable_refused": _mean(r["refused"] for r in unanswerable),
            "answerable_refused": _mean(r.get("refused", 0) for r in answerable),
            "latency_p50_s": _percentile([r["seconds"] for r in mine], 50),
            "latency_p95_s": _percentile([r["seconds"] for r in mine], 95),
            "tokens_in": _mean(r["tokens_in"] for r in mine),
            "tokens_out": _mean(r["tokens_out"] for r in mine),
        }  # fmt: skip
    return table


def _mean(values: Any) -> float:
    found = [float(v) for v in values]
    return sum(found) / len(found) if found else 0.0


def paired_bootstrap(rows: Sequence[dict[str, Any]], modes: Sequence[str], *,
                     samples: int = 2000, seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """For each pair of modes, the mean difference in token F1 over the answerable questions
    both answered, with a 95% interval from resampling those questions (paired)."""
    import numpy as np

    f1 = {(r["i"], r["mode"]): r["f1"] for r in rows if r["answerable"]}
    rng = np.random.default_rng(seed)
    pairs = []
    for a, b in itertools.combinations(modes, 2):
        both = sorted({i for i, m in f1 if m == a} & {i for i, m in f1 if m == b})
        if not both:
            continue
        diff = np.array([f1[i, a] - f1[i, b] for i in both])
        means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        pairs.append({"a": a, "b": b, "questions": len(both), "f1_difference": float(diff.mean()),
                      "ci95": [float(low), float(high)],
                      "significant": bool(low > 0 or high < 0)})  # fmt: skip
    return pairs


def mode_interval(rows: Sequence[dict[str, Any]], mode: str, *, samples: int = 2000,
                  seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """A 95% bootstrap interval of one mode's mean token F1."""
    import numpy as np

    values = np.array([r["f1"] for r in rows if r["mode"] == mode and r["answerable"]])
    if not len(values):
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def side_by_side(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per question: the gold answer and each mode's answer with its F1."""
    by_question: dict[int, dict[str, Any]] = {}
    for r in rows:
        entry = by_question.setdefault(r["i"], {"i": r["i"], "question": r["question"],
                                                "gold": r["gold"], "answers": {}})  # fmt: skip
        entry["answers"][r["mode"]] = {"answer": r["answer"], "refused": r["refused"],
                                       "f1": r["f1"]}  # fmt: skip
    return [by_question[i] for i in sorted(by_question)]


def split_modes(text: str, known: Sequence[str]) -> list[str]:
    """'rag, extractive' -> ['rag', 'extractive'], each checked."""
    modes = [m for m in re.split(r"[,\s]+", text) if m]
    unknown = [m for m in modes if m not in known]
    if unknown or not modes:
        raise DatasetError(f"Unknown modes {unknown}; choose from {', '.join(known)}.")
    return list(dict.fromkeys(modes))


Intervals = dict[str, tuple[float, float]]


def build_report(
    rows: Sequence[dict[str, Any]], modes: Sequence[str], setting: dict[str, Any]
) -> tuple[dict[str, Any], Intervals]:
    """The report's content, and each mode's F1 interval (for the charts)."""
    intervals = {m: mode_interval(rows, m) for m in modes}
    table = per_mode(rows, modes)
    for mode in modes:
        table[mode]["token_f1_ci95"] = list(intervals[mode])  # type: ignore[assignment]
    report = {"setting": setting, "modes": table, "pairs": paired_bootstrap(rows, modes),
              "questions": side_by_side(rows)}  # fmt: skip
    return report, intervals
