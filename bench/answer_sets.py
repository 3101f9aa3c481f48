"""The question sets `bench answers` scores: covid_qa (a seeded sample), the Python FAQ, and
the user guide in docs/ (questions kept in bench/data/docs_questions.jsonl, with gold answers
and the key phrases an answer must contain). ClapNQ refusals are in bench/refusal.py."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from generation.prompts import Example
from ingest.cleaning import normalize_text
from ingest.discovery import source_id
from ingest.loaders import decode

REPOSITORY = Path(__file__).resolve().parents[1]
DOCS_QUESTIONS = REPOSITORY / "bench" / "data" / "docs_questions.jsonl"


@dataclass
class Item:
    """A question, its gold answer, and how to tell whether a chunk holds that answer."""

    question: str
    gold: str
    holds: Callable[[str, int, int], bool]  # (source, start, length) -> holds the gold answer
    key_phrases: tuple[str, ...] = ()  # an answer is right when it contains one of these


@dataclass
class AnswerSet:
    """The files to ingest, the questions, and worked examples (for few_shot) from outside them."""

    name: str
    paths: list[Path]
    items: list[Item]
    examples: list[Example] = field(default_factory=list)


def covid_qa(data: Path, limit: int | None) -> AnswerSet:
    """A seeded sample of 200 covid_qa questions (the first `limit` of it); gold: the span."""
    rows = [json.loads(line) for line in
            (data / "covid_qa" / "covidqa_200423.flat.jsonl").read_text().splitlines()]  # fmt: skip
    rng = random.Random(2026)
    sample = rng.sample(rows, 200)
    rest = [r for r in rows if r not in sample]
    examples = [Example(r["question"], r["answer"].strip(), r["answer"].strip())
                for r in rng.sample(rest, 3)]  # fmt: skip
    sample = sample[:limit]
    items: list[Item] = []
    texts: dict[Path, str] = {}
    for row in sample:
        path = data / "covid_qa" / row["document_file"]
        raw = texts.setdefault(path, decode(path.read_bytes()))
        offset, source = len(normalize_text(raw[: row["answer_start"]])), source_id(path)

        def holds(s: str, start: int, length: int, source: str = source, at: int = offset) -> bool:
            return s == source and start <= at < start + length

        items.append(Item(row["question"], row["answer"], holds))
    folder = data / "covid_qa" / "documents_txt"
    if limit is None or limit >= 100:
        return AnswerSet("covid_qa", [folder], items, examples)
    distractors = sorted(folder.glob("*.txt"))[:8]  # so retrieval still has to choose
    return AnswerSet("covid_qa", sorted(set(texts) | set(distractors)), items, examples)


def _first_paragraph(rst: str, words: int = 60) -> str:
    paragraph = re.split(r"\n\s*\n", rst.strip())[0]
    return " ".join(paragraph.split()[:words])


def python_faq(data: Path, limit: int | None) -> AnswerSet:
    """The Python FAQ questions (a seeded sample of `limit`, at most all but the three kept
    for few-shot examples); gold: the entry's first paragraph."""
    root = data / "python311_docs"
    rows = [json.loads(line) for line in (root / "python_faq_qa.jsonl").read_text().splitlines()]
    rng = random.Random(2026)
    chosen = rng.sample(rows, min(limit or len(rows), len(rows) - 3))
    rest = [r for r in rows if r not in chosen]
    examples = [Example(r["question"], _first_paragraph(r["answer_rst"], 40))
                for r in rng.sample(rest, 3)]  # fmt: skip
    items = []
    for row in chosen:
        source = source_id(root / "rst_sources" / f"{row['file']}.txt")

        def holds(s: str, start: int, length: int, source: str = source) -> bool:
            return s == source

        items.append(Item(row["question"], _first_paragraph(row["answer_rst"]), holds))
    folder = root / "rst_sources"
    return AnswerSet("python_faq", [folder / "faq"] if limit else [folder], items, examples)


def user_guide(limit: int | None, questions: Path = DOCS_QUESTIONS) -> AnswerSet:
    """Questions about the user guide (docs/), each with a gold answer, its key phrases and the
    page that answers it; few_shot examples are the last three questions, not scored."""
    rows = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines()]
    scored, shown = rows[:-3], rows[-3:]
    docs = REPOSITORY / "docs"
    items = []
    for row in scored[:limit]:
        source = source_id(docs / row["file"])

        def holds(s: str, start: int, length: int, source: str = source) -> bool:
            return s == source

        items.append(Item(row["question"], row["answer"], holds, tuple(row["key_phrases"])))
    examples = [Example(r["question"], r["answer"]) for r in shown]
    return AnswerSet("docs", [docs], items, examples)


def load_set(name: str, data: Path, limit: int | None) -> AnswerSet:
    """One set by name: covid_qa, python_faq or docs."""
    if name == "docs":
        return user_guide(limit)
    return {"covid_qa": covid_qa, "python_faq": python_faq}[name](data, limit)
