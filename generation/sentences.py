"""Passages as sentences: prose split at sentence ends, table rows and list items on their
own, code blocks whole, headings kept as the topic of what follows them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from generation.citations import content_words

_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\s]+\)")
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]*-[\s:|-]*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9`$])")


@dataclass(frozen=True)
class Sentence:
    """One sentence (or table row, or list item) of a retrieved passage."""

    text: str
    n: int  # the passage's number in the answer, from 1
    position: int  # its place in the passage
    item: bool = False  # a table row or list item
    topic: str = ""  # the heading it sits under, if the passage shows one

    @property
    def scored_text(self) -> str:
        """What is matched to the question: the sentence under its heading ("GET /healthz:
        Liveness: ok" answers "What does /healthz return?")."""
        return f"{self.topic}: {self.text}" if self.topic else self.text


def _table_row(line: str) -> str:
    cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
    return "; ".join(c for c in cells if c and not set(c) <= set("-: "))


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage: prose split at sentence ends (wrapped lines joined), and each
    table row or list item on its own."""
    return [unit for unit, _, _ in split_units(text)]


def split_units(text: str) -> list[tuple[str, bool, str]]:
    """The sentences of `split_sentences`, each with whether it is a table row or list item,
    and the heading above it in the passage ("" before the first)."""
    units: list[str] = []
    items: set[int] = set()  # indexes of the units that are rows or list items
    topics: dict[int, str] = {}  # index of the first unit under each heading -> heading
    heading = ""
    text = _LINK.sub(r"\1", text)  # [text](target) reads as text, and is no [n]
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.splitlines() if line.strip()]
        if lines and all(line.startswith(("    ", "\t")) for line in lines):  # a code block
            items.add(len(units))
            units.append(" ".join(line.strip() for line in lines))
            continue
        prose: list[str] = []
        item = False  # inside a list item: indented lines continue it
        row = False  # the line before was a table row
        for line in block.splitlines():
            if line.lstrip().startswith("#"):  # a heading names a topic; it answers nothing
                units += _SENTENCE_END.split(" ".join(prose)) if prose else []
                prose, heading = [], line.strip().lstrip("#").strip()
                topics[len(units)] = heading
                continue
            if _TABLE_RULE.match(line):  # the row above it was the header: names, no facts
                if row and units:
                    items.discard(len(units) - 1)
                    units.pop()
                continue
            row = line.lstrip().startswith("|")
            if line.lstrip().startswith("|") or _LIST_ITEM.match(line):
                units += _SENTENCE_END.split(" ".join(prose)) if prose else []
                prose, item = [], not line.lstrip().startswith("|")
                unit = _table_row(line) if not item else _LIST_ITEM.sub("", line.strip())
                items.add(len(units))
                units.append(unit)
            elif item and line.startswith((" ", "\t")) and line.strip():
                units[-1] += " " + line.strip()
            elif line.strip():
                prose.append(line.strip())
                item = False
        units += _SENTENCE_END.split(" ".join(prose)) if prose else []
    result = []
    for i, unit in enumerate(units):
        heading = topics.get(i, heading if i else "")
        if len(content_words(unit)) >= 2:
            result.append((unit.strip(), i in items, heading))
    return result
