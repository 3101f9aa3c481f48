"""Scoring answers against gold ones (SQuAD's normalisation and token F1), and the evaluation
the promote gate and the arena share: questions through a mode, scored."""

from __future__ import annotations

import re
import string
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from finetune.datasets import Dataset
from finetune.records import SOURCE_FIELDS, DatasetError
from generation.types import Answer
from ingest.loaders import LoadError, decode, read_rows

MARKERS = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


def normalise(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, articles or extra spaces."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1."""
    pred, ref = normalise(prediction).split(), normalise(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Question:
    """A question with its gold answer; unanswerable ones should be refused."""

    question: str
    gold: str
    answerable: bool = True
    source: str | None = None  # the document that holds the answer, when known


@dataclass(frozen=True)
class Scored:
    """One answer, scored."""

    question: Question
    answer: str
    refused: bool
    f1: float
    seconds: float

    @property
    def correct(self) -> bool:
        """Right: an answerable question answered with F1 >= 0.5 or the gold inside it; an
        unanswerable one refused."""
        if not self.question.answerable:
            return self.refused
        text, gold = normalise(self.answer), normalise(self.question.gold)
        return not self.refused and (self.f1 >= 0.5 or (bool(gold) and gold in text))

    @property
    def refusal_right(self) -> bool:
        """Refused exactly when the question is unanswerable."""
        return self.refused != self.question.answerable


def read_questions(path: Path) -> list[Question]:
    """JSONL or CSV: question, answer (or gold), optional answerable (an empty answer, or
    answerable false, makes a question that should be refused)."""
    try:
        rows = read_rows(decode(path.read_bytes()), csv_format=path.suffix.lower() == ".csv")
    except (OSError, LoadError) as error:
        raise DatasetError(f"{path}: {error}") from None
    found = []
    for row in rows:
        question = str(row.get("question") or "").strip()
        gold = str(row.get("answer") or row.get("gold") or "").strip()
        answerable = row.get("answerable", bool(gold))
        source = next((str(row[k]) for k in SOURCE_FIELDS if row.get(k)), None)
        if question:
            found.append(Question(question, gold, str(answerable).lower() not in ("false", "0"),
                                  source))  # fmt: skip
    if not found:
        raise DatasetError(f"{path}: no questions (each row needs a question field).")
    return found


def dataset_questions(dataset: Dataset, split: str = "test", form: str = "rag") -> list[Question]:
    """The questions of a dataset split, gold answers from the records' targets (without [n]).
    A RAFT refusal record only hid the answer's chunk from its own prompt: the collection
    still answers its question, so it is asked as answerable, with the pair's answer (records
    of datasets built before that answer was kept are left out). A dataset has no truly
    unanswerable questions of its own: give a questions file with `answerable: false` rows."""
    found: dict[str, Question] = {}
    for record in dataset.records(split, kind="sft", form=form):
        target = MARKERS.sub("", record["completion"][0]["content"]).strip()
        if record["refusal"]:
            target = record.get("answer") or ""
        if target:
            asked = Question(record["question"], target, True, record["source"])
            found.setdefault(record["question"], asked)
    return list(found.values())


def evaluate(ask: Callable[[Question], Answer], questions: Sequence[Question]) -> list[Scored]:
    """Every question through `ask`, scored."""
    scored = []
    for question in questions:
        began = time.perf_counter()
        answer = ask(question)
        text = "" if answer.refused else MARKERS.sub(" ", answer.text)
        scored.append(Scored(question, answer.text, answer.refused,
                             token_f1(text, question.gold) if question.answerable else 0.0,
                             time.perf_counter() - began))  # fmt: skip
    return scored


def summary(scored: Sequence[Scored]) -> dict[str, float]:
    """Mean F1 over answerable questions, refusal accuracy, and the share answered right."""
    answerable = [s for s in scored if s.question.answerable]
    n = len(scored) or 1
    return {
        "questions": len(scored),
        "token_f1": sum(s.f1 for s in answerable) / (len(answerable) or 1),
        "refusal_accuracy": sum(s.refusal_right for s in scored) / n,
        "correct": sum(s.correct for s in scored) / n,
    }
