"""The arena: scores per mode, paired bootstrap intervals, resuming, the report, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from finetune.arena import Arena, paired_bootstrap, per_mode
from finetune.datasets import DatasetStore
from finetune.records import DatasetError
from finetune.scoring import Question
from generation.types import Answer, Citation
from server.cli import main
from server.wiring import Services

QUESTIONS = [Question(f"q{i}?", f"gold answer {i}", source="/d/a.md") for i in range(30)]
QUESTIONS.append(Question("unknowable?", "", answerable=False))


def answer(text: str, *, refused: bool = False, source: str = "/d/a.md") -> Answer:
    cited = (Citation(1, source, None, "c", "t", 0.5),)
    return Answer(text=text, mode="rag", refused=refused, citations=() if refused else cited)


def good_and_bad(question: Question, mode: str) -> Answer:
    if not question.answerable:
        return answer("I could not find it.", refused=mode == "good")
    if mode == "good":
        return answer(f"{question.gold} [1].")
    return answer("something else entirely [1].", source="/d/b.md")


def test_modes_are_scored_and_their_difference_has_an_interval(tmp_path: Path) -> None:
    rows = Arena(tmp_path, QUESTIONS, ["good", "bad"], {}).run(good_and_bad, progress=False)
    table = per_mode(rows, ["good", "bad"])
    assert table["good"]["token_f1"] == 1.0 and table["bad"]["token_f1"] == 0.0
    assert table["good"]["written_citation_rate"] == 1.0
    assert table["good"]["citation_precision"] == 1.0 and table["bad"]["citation_precision"] == 0
    assert (
        table["good"]["unanswerable_refused"] == 1.0 and table["bad"]["unanswerable_refused"] == 0
    )
    [pair] = paired_bootstrap(rows, ["good", "bad"])
    assert pair["f1_difference"] == 1.0 and pair["significant"] and pair["questions"] == 30
    same = paired_bootstrap(rows + [r | {"mode": "twin"} for r in rows if r["mode"] == "good"],
                            ["good", "twin"])  # fmt: skip
    assert same[0]["ci95"] == [0.0, 0.0] and not same[0]["significant"]


def test_noisy_equal_modes_get_an_interval_around_zero(tmp_path: Path) -> None:
    def coin(question: Question, mode: str) -> Answer:
        i = int(re.sub(r"\D", "", question.question) or 0)
        right = (i * 7 + len(mode)) % 2 == 0
        return answer(f"{question.gold} [1]." if right else "no [1].")

    rows = Arena(tmp_path, QUESTIONS, ["aa", "bbb"], {}).run(coin, progress=False)
    [pair] = paired_bootstrap(rows, ["aa", "bbb"])
    low, high = pair["ci95"]
    assert low < pair["f1_difference"] < high and high - low > 0.2


def test_an_interrupted_comparison_resumes_where_it_stopped(tmp_path: Path) -> None:
    calls: list[tuple[str, str]] = []

    def flaky(question: Question, mode: str) -> Answer:
        calls.append((question.question, mode))
        if len(calls) == 7:
            raise KeyboardInterrupt
        return good_and_bad(question, mode)

    arena = Arena(tmp_path, QUESTIONS[:5], ["good", "bad"], {"x": 1})
    with pytest.raises(KeyboardInterrupt):
        arena.run(flaky, progress=False)
    rows = arena.run(flaky, progress=False)
    assert len(rows) == 10 and len(calls) == 11  # 6 kept; the 7th asked again, and 3 more
    assert len(set(calls)) == 10
    with pytest.raises(DatasetError, match="--restart"):
        Arena(tmp_path, QUESTIONS[:5], ["good"], {"x": 1}).run(flaky, progress=False)


def test_compare_writes_a_self_contained_report(
    services: Services, qa_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["compare", "-q", str(qa_file), "-m",
                                       "closed_book,extractive,rag", "-c", "guide", "-r",
                                       str(out), "--json"], obj=services)  # fmt: skip
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    assert list(table) == ["closed_book", "extractive", "rag"]
    assert table["extractive"]["token_f1"] > table["closed_book"]["token_f1"]
    report = json.loads((out / "report.json").read_text())
    assert len(report["pairs"]) == 3 and len(report["questions"]) == 6
    page = (out / "report.html").read_text()
    assert page.count("<img") == 3 and page.count("data:image/png;base64,") == 3
    assert not re.search(r"(src|href)=['\"]https?:", page)  # nothing to fetch: opens offline
    assert "Which port does the server listen on?" in page
    again = CliRunner().invoke(main, ["compare", "-q", str(qa_file), "-m",
                                      "closed_book,extractive,rag", "-c", "guide", "-r",
                                      str(out), "--json"], obj=services)  # fmt: skip
    assert again.exit_code == 0 and json.loads(again.stdout) == table  # resumed: all done


def test_compare_refuses_finetuned_modes_without_an_adapter(
    services: Services, qa_file: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["compare", "-q", str(qa_file), "-m", "rag,finetuned",
                                       "-r", str(tmp_path / "r")], obj=services)  # fmt: skip
    assert result.exit_code != 0 and "need --adapter" in result.output


def test_compare_takes_the_test_split_of_a_dataset(
    services: Services, qa_file: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    # Documents are split by a hash of their path (under tmp_path, so it varies): a test share
    # of 0.9 leaves the test split empty once in a million runs, not once in 64.
    args = ["dataset", "build", "g", "--qa", str(qa_file), "-c", "guide", "--test-share", "0.9",
            "--validation-share", "0"]  # fmt: skip
    built = runner.invoke(main, args, obj=services)
    assert built.exit_code == 0, built.output
    result = runner.invoke(main, ["compare", "-d", "g", "-m", "extractive", "-c", "guide", "-r",
                                  str(tmp_path / "r"), "--json"], obj=services)  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["setting"]["questions"] == "g@v1 test"
    dataset = DatasetStore(services.settings.datasets_path).get("g")
    tested = {r["question"] for r in dataset.records("test", form="rag")}
    assert tested and {q["question"] for q in report["questions"]} == tested
    both = runner.invoke(main, ["compare", "-d", "g", "-q", str(qa_file), "-r", str(tmp_path)],
                         obj=services)  # fmt: skip
    assert both.exit_code != 0 and "--questions FILE or --dataset" in both.output
