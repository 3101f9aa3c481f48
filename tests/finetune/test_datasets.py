"""The dataset factory: Q&A files, RAFT records over a collection, feedback; split by document,
rendered with the inference prompt, written as versions with a manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from finetune.datasets import DatasetStore, SplitRule
from finetune.factory import BuildPlan, Sources, build_dataset
from finetune.records import DatasetError, read_qa_file
from finetune.scoring import dataset_questions
from generation.rag import Request
from server.cli import main
from server.wiring import Services
from tests.fakes import FakeGenerator
from tests.finetune.conftest import PAIRS


class Spy:
    """The Rag's prompt(), remembering the sources each record was rendered with."""

    def __init__(self, services: Services) -> None:
        self.rag, self.hits = services.rag, {}

    def prompt(self, question: str, hits: Any, **options: Any) -> Any:
        self.hits[question, options["mode"]] = hits
        return self.rag.prompt(question, hits, **options)


class Fixed:
    """A searcher that returns the given sources, in their order."""

    def __init__(self, hits: Any) -> None:
        self.found = hits

    def search(self, question: str, **options: Any) -> Any:
        return self.found


def build(services: Services, spy: Any = None, **plan: Any) -> Any:
    rag = services.rag
    template = rag.template_for("guide", plan.get("template"))
    sources = Sources(
        prompter=spy or rag, searcher=services.retriever,
        documents=list(services.index.documents("guide")), refusal=template.refusal,
        template=template.name, feedback=services.feedback,
    )  # fmt: skip
    return build_dataset(BuildPlan(**plan), sources, DatasetStore(services.settings.datasets_path),
                         fingerprint={"base_model": "fake"})  # fmt: skip


def test_qa_files_are_read_from_jsonl_and_csv_with_the_usual_field_names(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"q": "Why?", "answer_rst": "Because.", "document_file": "d/x.txt"}\n\n')
    csv = tmp_path / "b.csv"
    csv.write_text("question,answer\nWhat?,That.\n")
    [pair] = read_qa_file(jsonl)
    assert (pair.question, pair.answer, pair.source) == ("Why?", "Because.", "d/x.txt")
    assert read_qa_file(csv)[0].answer == "That."
    (tmp_path / "bad.jsonl").write_text('{"question": "x"\n')
    with pytest.raises(DatasetError, match="line 1 is not valid JSON"):
        read_qa_file(tmp_path / "bad.jsonl")
    (tmp_path / "none.jsonl").write_text('{"title": "x"}\n')
    with pytest.raises(DatasetError, match="needs a question field"):
        read_qa_file(tmp_path / "none.jsonl")


def test_the_split_follows_the_document_and_is_reproducible() -> None:
    rule = SplitRule(validation=0.2, test=0.3, seed=7)
    splits = [rule.of(f"/docs/{i}.md") for i in range(400)]
    assert splits == [SplitRule(validation=0.2, test=0.3, seed=7).of(f"/docs/{i}.md")
                      for i in range(400)]  # fmt: skip
    shares = {s: splits.count(s) / 400 for s in ("train", "validation", "test")}
    assert abs(shares["test"] - 0.3) < 0.07 and abs(shares["validation"] - 0.2) < 0.07
    assert splits != [SplitRule(validation=0.2, test=0.3, seed=8).of(f"/docs/{i}.md")
                      for i in range(400)]  # fmt: skip
    with pytest.raises(DatasetError):
        SplitRule(validation=0.5, test=0.5)


def test_raft_records_cite_the_gold_chunk_among_distractors_of_the_same_split(
    services: Services, qa_file: Path
) -> None:
    built = build(services, name="guide", qa_files=[qa_file], collection="guide",
                  refusal_share=0.0, split=SplitRule(validation=0.0, test=0.34))  # fmt: skip
    rule = SplitRule(validation=0.0, test=0.34)
    raft = [r for s in ("train", "test") for r in built.records(s, form="rag")]
    assert len(raft) == len(PAIRS) and built.manifest["skipped"]["no_gold_chunk"] == 0
    for record in raft:
        answer = next(a for q, a, _ in PAIRS if q == record["question"])
        n = record["gold"]
        assert record["completion"][0]["content"].startswith(answer)
        assert f"[{n}]" in record["completion"][0]["content"]
        prompt = record["prompt"][-1]["content"]
        # The gold source is shown under its number, and every source is of the same split.
        shown = prompt.split(f"[{n}]", 1)[1]
        assert answer.split()[-1] in shown.split("[", 1)[0]
        assert record["split"] == rule.of(record["source"])
    documents = built.manifest["documents"]
    assert not set(documents["train"]) & set(documents["test"])
    closed = built.records("train", form="closed_book") + built.records("test", form="closed_book")
    assert len(closed) == len(PAIRS) and all(r["gold"] is None for r in closed)


def test_a_share_of_raft_records_has_only_distractors_and_the_refusal_as_target(
    services: Services, qa_file: Path
) -> None:
    built = build(services, name="refuse", qa_files=[qa_file], collection="guide",
                  closed_book=False, refusal_share=1.0,
                  split=SplitRule(validation=0.0, test=0.0))  # fmt: skip
    refusal = services.rag.template_for("guide").refusal
    records = built.records("train")
    assert records and all(r["refusal"] and r["gold"] is None for r in records)
    for record in records:
        assert record["completion"][0]["content"] == refusal
        answer = next(a for q, a, _ in PAIRS if q == record["question"])
        assert answer not in record["prompt"][-1]["content"]
    # the collection still answers these questions: evaluated, they are answerable, with the
    # pair's answer as gold (not the refusal)
    asked = dataset_questions(built, "train")
    assert len(asked) == len(records)
    for question in asked:
        assert question.answerable
        assert question.gold == next(a for q, a, _ in PAIRS if q == question.question)


@pytest.mark.parametrize("template", ["docs", "support", "extract"])
def test_records_are_rendered_with_exactly_the_prompt_inference_uses(
    services: Services, qa_file: Path, generator: FakeGenerator, template: str
) -> None:
    spy = Spy(services)
    built = build(services, spy, name=f"same-{template}", qa_files=[qa_file],
                  collection="guide", template=template, refusal_share=0.3,
                  split=SplitRule(validation=0.0, test=0.0))  # fmt: skip
    records = built.records("train")
    assert {r["format"] for r in records} == {"closed_book", "rag"}
    for record in records:
        mode = "rag" if record["format"] == "rag" else "closed_book"
        hits = spy.hits[record["question"], mode]
        rag = services.rag
        searcher, rag._searcher = rag._searcher, Fixed(hits)  # retrieval finds these sources
        try:
            rag.answer(Request(record["question"], "guide", mode=mode, template=template,
                               strict=False))  # fmt: skip
        finally:
            rag._searcher = searcher
        assert generator.prompts[-1] == record["prompt"]


def test_versions_are_new_only_when_the_content_changes(services: Services, qa_file: Path) -> None:
    first = build(services, name="v", qa_files=[qa_file])
    again = build(services, name="v", qa_files=[qa_file])
    assert (first.version, again.version) == (1, 1)
    qa_file.write_text(qa_file.read_text() + '{"question": "New?", "answer": "Yes."}\n')
    changed = build(services, name="v", qa_files=[qa_file])
    assert changed.version == 2 and changed.manifest["content_hash"] != first.manifest[
        "content_hash"]  # fmt: skip
    store = DatasetStore(services.settings.datasets_path)
    assert store.get("v").version == 2 and store.get("v@v1").manifest == first.manifest
    with pytest.raises(DatasetError, match="no version 'v9'"):
        store.get("v@v9")
    with pytest.raises(DatasetError, match="No dataset 'w'"):
        store.get("w")
    assert first.manifest["inputs"][0]["pairs"] == len(PAIRS)


def test_feedback_makes_corrections_and_preference_pairs(services: Services) -> None:
    rag, store = services.rag, services.feedback
    question = "Which port does the server listen on?"
    good = rag.answer(Request(question, "guide", mode="extractive"))
    bad = rag.answer(Request(question, "guide", mode="extractive"))
    up, down = store.record(good, collection="guide"), store.record(bad, collection="guide")
    store.rate(up, "up")
    store.rate(down, "down", correction="Port 8000.")
    built = build(services, name="fb", feedback=True, split=SplitRule(validation=0.0, test=0.0))
    sft = built.records("train", kind="sft")
    pairs = built.records("train", kind="preference")
    assert [r["completion"][0]["content"] for r in sft] == ["Port 8000 [1]."]  # cited
    assert len(pairs) == 2 and {p["rejected"][0]["content"] for p in pairs} == {bad.text}
    assert {p["chosen"][0]["content"] for p in pairs} == {"Port 8000 [1].", good.text}
    assert all(p["format"] == "rag" and "port 8000" in p["prompt"][-1]["content"].lower()
               for p in pairs)  # fmt: skip


def test_bad_input_stops_with_a_message_that_says_what_to_do(
    services: Services, tmp_path: Path
) -> None:
    with pytest.raises(DatasetError, match="Nothing to build from"):
        build(services, name="x")
    with pytest.raises(DatasetError, match="made no records"):
        build(services, name="x", feedback=True)
    runner = CliRunner()
    result = runner.invoke(main, ["dataset", "build", "x", "--qa", str(tmp_path / "q.jsonl")],
                           obj=services)  # fmt: skip
    assert result.exit_code != 0 and "does not exist" in result.output
    result = runner.invoke(main, ["dataset", "build", "bad name!", "--feedback"], obj=services)
    assert result.exit_code != 0


def test_cli_builds_lists_and_shows(services: Services, qa_file: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["dataset", "build", "cli", "--qa", str(qa_file), "-c", "guide",
                                  "--json"], obj=services)  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["dataset"] == "cli@v1" and manifest["base_model"]
    assert manifest["template"] == "docs" and "by source document" in manifest["split_rule"]
    listed = runner.invoke(main, ["dataset", "list"], obj=services)
    assert "cli@v1" in listed.output
    shown = runner.invoke(main, ["dataset", "show", "cli"], obj=services)
    assert "train:" in shown.output and "sft/rag" in shown.output


def test_the_same_records_rendered_for_another_model_are_a_new_version(tmp_path: Path) -> None:
    from finetune.records import Record

    records = [
        Record(
            kind="sft",
            format="closed_book",
            origin="qa",
            question="q?",
            source=None,
            prompt=[{"role": "user", "content": "q?"}],
            completion="a.",
            split="train",
        )
    ]
    store = DatasetStore(tmp_path)
    first = store.write("m", records, {"base_model": "a", "template_hash": "t1"})
    assert store.write("m", records, {"base_model": "a", "template_hash": "t1"}).version == 1
    assert store.write("m", records, {"base_model": "b", "template_hash": "t1"}).version == 2
    assert store.write("m", records, {"base_model": "b", "template_hash": "t2"}).version == 3
    assert first.manifest["template_hash"] == "t1"


class Asker(FakeGenerator):
    """Asks about the first words of the passage it is shown; 'no idea' for the limits page."""

    def generate(self, messages: Any, **options: Any) -> Any:
        passage = messages[-1]["content"].split("Passage:\n", 1)[1]
        body = passage.split("\n\n", 1)[-1].split()
        self.enqueue("no idea" if "Uploads" in passage else f"What about {' '.join(body[:5])}?")
        return super().generate(messages, **options)


def test_generated_questions_are_answered_from_their_own_chunk(services: Services) -> None:
    from finetune.questions import generate_pairs

    chunks = [c for s in sorted(services.index.documents("guide"))
              for c in services.index.chunks_of("guide", s)]  # fmt: skip
    assert len(chunks) == 6 and all(c.text for c in chunks)
    pairs, dropped = generate_pairs(Asker(), chunks, 6)
    assert dropped == 1 and len(pairs) == 5  # the limits page's reply is no question
    for pair in pairs:
        chunk = next(c for c in chunks if c.source == pair.source)
        assert pair.answer in chunk.text and pair.origin == "generated" and "[" not in pair.answer
    rag = services.rag
    template = rag.template_for("guide")
    sources = Sources(prompter=rag, searcher=services.retriever,
                      documents=list(services.index.documents("guide")), refusal=template.refusal,
                      template=template.name, generator=Asker(),
                      chunks_of=lambda s: services.index.chunks_of("guide", s))  # fmt: skip
    built = build_dataset(BuildPlan(name="gen", collection="guide", generate=6, refusal_share=0,
                                    split=SplitRule(validation=0, test=0)),
                          sources, DatasetStore(services.settings.datasets_path),
                          fingerprint={})  # fmt: skip
    records = built.records("train")
    assert {r["origin"] for r in records} == {"generated", "raft"}
    assert built.manifest["inputs"][0] == {"kind": "generated", "asked": 6, "made": 5,
                                           "dropped": 1}  # fmt: skip
    with pytest.raises(DatasetError, match="--generate needs --collection"):
        build_dataset(BuildPlan(name="g2", generate=2), sources,
                      DatasetStore(services.settings.datasets_path), fingerprint={})  # fmt: skip
