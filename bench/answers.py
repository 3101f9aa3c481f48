"""Answer quality per mode: exact match, token F1, containment, citation precision, refusals
and latency, on covid_qa (seeded sample of 200), the Python FAQ, and ClapNQ refusals.

Modes: closed_book (the model alone), few_shot (three worked examples from the same set, not
in the sample), rag (the product default: hybrid retrieval, the docs template, strict).
Gold answers: covid_qa's answer span; for the Python FAQ, the first paragraph of the FAQ
entry. A citation is precise when its chunk holds the gold answer (covid_qa: covers the
answer's offset; Python FAQ: comes from the gold file); citation_precision counts the [n] the
model wrote, inferred_citation_precision the sources attached when it wrote none. --quick: 12
questions per set, and only the documents those questions need (plus distractors) are ingested.
"""

from __future__ import annotations

import json
import random
import re
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.refusal import clapnq_refusals, short_answer_services
from bench.report import Result, percentile
from generation.prompts import Example
from generation.rag import Request
from generation.types import AnswerMode
from ingest.cleaning import normalize_text
from ingest.discovery import source_id
from ingest.loaders import decode
from server.wiring import Services

MODES = tuple(AnswerMode)


@dataclass
class Item:
    """A question, its gold answer, and how to tell whether a chunk holds that answer."""

    question: str
    gold: str
    holds: Callable[[str, int, int], bool]  # (source, start, length) -> holds the gold answer


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


def _covid(data: Path, quick: bool) -> tuple[list[Path], list[Item], list[Example]]:
    rows = [json.loads(line) for line in
            (data / "covid_qa" / "covidqa_200423.flat.jsonl").read_text().splitlines()]  # fmt: skip
    rng = random.Random(2026)
    sample = rng.sample(rows, 200)
    rest = [r for r in rows if r not in sample]
    examples = [Example(r["question"], r["answer"].strip(), r["answer"].strip())
                for r in rng.sample(rest, 3)]  # fmt: skip
    sample = sample[:12] if quick else sample
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
    if not quick:
        return [folder], items, examples
    distractors = sorted(folder.glob("*.txt"))[:8]  # so retrieval still has to choose
    return sorted(set(texts) | set(distractors)), items, examples


def _first_paragraph(rst: str, words: int = 60) -> str:
    paragraph = re.split(r"\n\s*\n", rst.strip())[0]
    return " ".join(paragraph.split()[:words])


def _python_faq(data: Path, quick: bool) -> tuple[list[Path], list[Item], list[Example]]:
    root = data / "python311_docs"
    rows = [json.loads(line) for line in (root / "python_faq_qa.jsonl").read_text().splitlines()]
    rng = random.Random(2026)
    chosen = rng.sample(rows, 12) if quick else rows
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
    return [folder / "faq"] if quick else [folder], items, examples


def _score(services: Services, collection: str, items: list[Item], mode: str,
           examples: list[Example]) -> dict[str, float]:  # fmt: skip
    em = f1 = contained = refused = cited = 0.0
    precise, citations, latencies = 0, 0, []
    inferred_precise, inferred = 0, 0
    for item in items:
        began = time.perf_counter()
        shown = examples if mode == "few_shot" else None
        answer = services.rag.answer(Request(item.question, collection, mode=mode, examples=shown))
        latencies.append((time.perf_counter() - began) * 1000)
        text = "" if answer.refused else answer.text
        em += normalise(text) == normalise(item.gold)
        f1 += token_f1(text, item.gold)
        contained += bool(normalise(item.gold)) and normalise(item.gold) in normalise(text)
        refused += answer.refused
        if answer.citations and not answer.citations_inferred and not answer.refused:
            cited += 1
            citations += len(answer.citations)
            precise += sum(item.holds(c.source, c.start, len(c.text)) for c in answer.citations)
        elif answer.citations and not answer.refused:  # the sources attached for the model
            inferred += len(answer.citations)
            inferred_precise += sum(item.holds(c.source, c.start, len(c.text))
                                    for c in answer.citations)  # fmt: skip
    n = len(items)
    return {
        "exact_match": em / n, "token_f1": f1 / n, "containment": contained / n,
        "refusal_rate": refused / n, "answers_with_citations": cited / n,
        "citation_precision": precise / citations if citations else 0.0,
        "inferred_citation_precision": inferred_precise / inferred if inferred else 0.0,
        "latency_ms_p50": percentile(latencies, 50), "latency_ms_p95": percentile(latencies, 95),
    }  # fmt: skip


def run_answers(*, data: Path, quick: bool) -> Result:
    """Every mode on covid_qa and the Python FAQ, then rag refusals on ClapNQ (the full
    300 + 300 are `bench refusal`)."""
    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        services = short_answer_services(Path(tmp) / "home")
        settings = services.settings
        for name, build in (("covid_qa", _covid), ("python_faq", _python_faq)):
            paths, items, examples = build(data, quick)
            services.ingestor.ingest(paths, collection=name)
            metrics[f"{name}_questions"] = len(items)
            for mode in MODES:
                for key, value in _score(services, name, items, mode, examples).items():
                    metrics[f"{name}_{mode}_{key}"] = value
        metrics |= clapnq_refusals(services, data, 12 if quick else None, Path(tmp))
    return Result(
        metrics=metrics,
        context={
            "generator": settings.generator.model, "max_new_tokens": 96,
            "quantize": settings.generator.quantize,
            "template": settings.answers.template, "retrieval_mode": settings.retrieval.mode,
            "top_k": settings.retrieval.top_k, "min_score": settings.retrieval.min_score,
            "answer_min_support": settings.answers.answer_min_support,
            "covid_sample_seed": 2026,
        },
    )  # fmt: skip
