"""`python -m bench arena --quick`: the whole pipeline on tiny in-code models and 8 covid_qa
articles: dataset, RAFT training, every mode compared, report.html and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.model


def test_the_quick_arena_writes_a_report_with_all_six_modes(
    shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "arena.json"
    assert main(["arena", "--quick", "--data", str(shared_data), "--json-out", str(out)]) == 0
    result = json.loads(out.read_text())
    modes = ["closed_book", "few_shot", "rag", "extractive", "finetuned", "finetuned_rag"]
    assert all(f"{m}_token_f1" in result for m in modes)
    assert result["train_steps"] == 2
    report = json.loads((tmp_path / "bench/results/arena/quick/report.json").read_text())
    assert list(report["modes"]) == modes and len(report["pairs"]) == 15
    page = (tmp_path / "bench/results/arena/quick/report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "finetuned_rag" in page
