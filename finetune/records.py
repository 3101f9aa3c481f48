"""Training records and what they are made from: question/answer files (JSONL or CSV), and the
shape every record is written in (TRL's conversational prompt/completion and preference
formats, plus where the record came from)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.loaders import ANSWER_FIELDS, QUESTION_FIELDS, LoadError, decode, read_rows

SOURCE_FIELDS = ("source", "document", "document_file", "file", "doc", "path", "url")
_ANSWERS = (*ANSWER_FIELDS, "answer_rst", "output")


# Dataset and adapter names: plain folder names.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class DatasetError(ValueError):
    """Input a dataset cannot be built from, or a dataset that cannot be used as asked."""


@dataclass(frozen=True)
class QAPair:
    """A question with its answer, and the document it is answered from (if known)."""

    question: str
    answer: str
    source: str | None = None
    origin: str = "qa"


@dataclass
class Record:
    """One training record. `kind` sft: `prompt` -> `completion`; preference: `prompt` ->
    `chosen` over `rejected`. `format` is the mode it trains: closed_book (no sources) or rag.
    `source` is the document the split is decided by."""

    kind: str
    format: str
    origin: str
    question: str
    source: str | None
    prompt: list[dict[str, str]]
    completion: str = ""
    rejected: str = ""
    gold: int | None = None  # the [n] of the source that holds the answer (rag records)
    refusal: bool = False  # the target is the template's refusal (no source holds the answer)
    split: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable across builds: the same input gives the same id."""
        key = json.dumps([self.kind, self.format, self.origin, self.question, self.source,
                          self.completion, self.rejected, self.refusal])  # fmt: skip
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The JSON line: TRL's conversational fields, then what the record is."""
        turn = [{"role": "assistant", "content": self.completion}]
        shape: dict[str, Any] = {"id": self.id, "prompt": self.prompt}
        if self.kind == "preference":
            shape |= {"chosen": turn, "rejected": [{"role": "assistant", "content": self.rejected}]}
        else:
            shape["completion"] = turn
        return shape | {
            "kind": self.kind, "format": self.format, "origin": self.origin,
            "question": self.question, "source": self.source, "gold": self.gold,
            "refusal": self.refusal, "split": self.split, **self.extra,
        }  # fmt: skip


def _pick(row: Mapping[str, Any], names: Sequence[str]) -> str | None:
    lowered = {str(k).lower(): v for k, v in row.items()}
    for name in names:
        value = lowered.get(name)
        if isinstance(value, str | int | float) and str(value).strip():
            return str(value).strip()
    return None


def read_qa_file(path: Path) -> list[QAPair]:
    """Question/answer pairs from JSONL or CSV (by extension): fields question and answer (or
    the other names FAQ files use), and optionally source (or document_file, file, url...)."""
    try:
        text = decode(path.read_bytes())
    except OSError as error:
        raise DatasetError(f"{path}: cannot read it: {error.strerror or error}") from None
    try:
        rows = read_rows(text, csv_format=path.suffix.lower() == ".csv")
    except LoadError as error:
        raise DatasetError(f"{path}: {error}.") from None
    pairs = []
    for row in rows:
        question, answer = _pick(row, QUESTION_FIELDS), _pick(row, _ANSWERS)
        if question and answer:
            pairs.append(QAPair(question, answer, _pick(row, SOURCE_FIELDS)))
    if not pairs:
        raise DatasetError(
            f"{path}: no question/answer pairs; each row needs a question field "
            f"({', '.join(QUESTION_FIELDS)}) and an answer field ({', '.join(_ANSWERS)})."
        )
    return pairs


def cite(answer: str, n: int) -> str:
    """The answer with [n] before its final full stop: 'Port 8000 [2].'"""
    text = answer.strip()
    if text.endswith((".", "!", "?")):
        return f"{text[:-1]} [{n}]{text[-1]}"
    return f"{text} [{n}]."
