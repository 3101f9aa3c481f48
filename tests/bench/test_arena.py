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
    # out of domain: 3 answerable + 3 unanswerable ClapNQ questions, 3 Python FAQ ones
    assert result["clapnq_questions"] == 6 and result["python_faq_questions"] == 3
    assert "clapnq_finetuned_rag_unanswerable_refused" in result
    assert "python_faq_f1_finetuned_rag_minus_rag_ci_low" in result
    clapnq = json.loads((tmp_path / "bench/results/arena/quick/clapnq/report.json").read_text())
    first = clapnq["questions"][0]["answers"]
    assert set(first) == {"extractive", "rag", "finetuned_rag"}


def test_a_kept_arena_run_resumes_instead_of_starting_over(
    shared_data: Path, tmp_path: Path
) -> None:
    args = ["arena", "--quick", "--data", str(shared_data), "--work", str(tmp_path / "work")]
    answers = tmp_path / "bench/results/arena/quick/answers.jsonl"
    answers.parent.mkdir(parents=True)
    (answers.parent / "run.json").write_text('{"key": "an older comparison"}')  # replaced
    assert main([*args, "--json-out", str(tmp_path / "first.json")]) == 0
    first = answers.read_text().splitlines()
    adapter = tmp_path / "work/home/adapters/covid-raft/adapter_model.safetensors"
    trained = adapter.stat().st_mtime_ns
    answers.write_text("\n".join(first[:-4]) + "\n")  # as if killed before the last answers
    assert main([*args, "--json-out", str(tmp_path / "second.json")]) == 0
    again = answers.read_text().splitlines()
    assert again[:-4] == first[:-4] and len(again) == len(first)  # only the missing ones redone
    assert adapter.stat().st_mtime_ns == trained  # the saved adapter was not trained again
