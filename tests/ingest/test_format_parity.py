"""The Debian FAQ as HTML, TXT and PDF: the same questions retrieve the same sections."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from retrieval.retriever import Retriever
from server.wiring import Services
from tests.conftest import MakeSettings

pytestmark = pytest.mark.slow


def shingles(text: str, n: int = 6) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + n]) for i in range(max(0, len(words) - n + 1))}


def test_same_sections_whatever_the_format(
    shared_data: Path, tmp_path: Path, make_settings: MakeSettings
) -> None:
    folder = shared_data / "debian_faq"
    services = Services(make_settings(home=tmp_path))
    ingestor = services.ingestor
    assert ingestor.ingest([folder / "debian-faq.en.txt"], collection="txt").files_ok == 1
    assert ingestor.ingest([folder], collection="html", include=["*.html"]).files_ok == 17
    assert ingestor.ingest([folder / "debian-faq.en.pdf"], collection="pdf").files_ok == 1
    items = [json.loads(line) for line in (folder / "debian_faq_qa.jsonl").read_text().splitlines()]
    answers = {item["section"]: shingles(item["answer"]) for item in items}

    def sections(text: str) -> set[str]:
        # A chunk belongs to the sections whose gold answer it quotes (3+ shared 6-grams).
        found = shingles(text)
        return {section for section, gold in answers.items() if len(found & gold) >= 3}

    retriever = Retriever(index=services.index, embedder=services.embedder, top_k=3)
    gold = {"txt": 0, "html": 0, "pdf": 0}
    shared = 0
    for item in items:
        found = {
            fmt: set().union(*(sections(h.chunk.text) for h in
                               retriever.search(item["question"], collection=fmt)))
            for fmt in gold
        }  # fmt: skip
        shared += bool(found["txt"] & found["html"] & found["pdf"])
        for fmt in gold:
            gold[fmt] += item["section"] in found[fmt]
    rates = {fmt: round(hits / len(items), 3) for fmt, hits in gold.items()}
    print(f"\ngold section in top 3: {rates}; a section shared by all three top 3: "
          f"{shared / len(items):.3f} ({len(items)} questions)")  # fmt: skip
    assert min(rates.values()) >= 0.8
    assert max(rates.values()) - min(rates.values()) <= 0.1
    assert shared / len(items) >= 0.9
