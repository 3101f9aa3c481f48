"""Answer quality per mode, per question set: exact match, token F1 (the answer's [n] markers
left out), containment, key phrases (user guide), refusals, answers replaced after failing
verification, degenerate answers shown (must be 0), answers with a citation, citations
supported by their passage, citation precision, and latency.

Sets (bench/answer_sets.py): docs (the user guide, questions in bench/data), covid_qa (seeded
sample of 200), python_faq; then ClapNQ dev refusals per retrieving mode (bench/refusal.py).
Modes: closed_book, few_shot (three worked examples from outside the sample), rag, extractive.
A citation is precise when its chunk holds the gold answer (covid_qa: covers the answer's
offset; others: comes from the gold file); citation_precision counts the [n] in the answer,
inferred_citation_precision the sources attached when it had none. --quick or --limit N: that
many questions per set, and (for N < 100) only the documents they need plus distractors.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.answer_sets import AnswerSet, load_set
from bench.refusal import clapnq_refusals, short_answer_services
from bench.report import Result, percentile
from finetune.scoring import normalise, token_f1
from generation.rag import Request
from generation.types import USES_ADAPTER, AnswerMode
from generation.verification import degenerate
from server.wiring import Services

MODES = tuple(m for m in AnswerMode if m not in USES_ADAPTER)  # the arena has those
SETS = ("docs", "covid_qa", "python_faq", "clapnq")
_MARKERS = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


def without_markers(answer: str) -> str:
    """The answer with its [n] citation markers left out (they are not part of any gold)."""
    return _MARKERS.sub(" ", answer)


def contains(text: str, gold: str) -> bool:
    """Whether the text holds the (non-empty) gold answer, normalised."""
    return bool(normalise(gold)) and normalise(gold) in normalise(text)


def _words(text: str) -> str:
    """Lower case, punctuation as spaces: 'RAGQA_SERVER__PORT' -> 'ragqa server port'."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def has_key_phrase(answer: str, phrases: Sequence[str]) -> bool:
    """Whether the answer (its [n] markers aside) holds one of the phrases, as whole words."""
    said = f" {_words(without_markers(answer))} "
    return any(f" {_words(p)} " in said for p in phrases if _words(p))


def _score(services: Services, answers: AnswerSet, mode: str) -> dict[str, float]:
    """Every question of the set in one mode; the answer's [n] markers are left out of F1."""
    em = f1 = contained = keyed = refused = cited = replaced = degenerate_shown = 0.0
    precise, citations, supported, latencies = 0, 0, 0, []
    inferred_precise, inferred = 0, 0
    for item in answers.items:
        began = time.perf_counter()
        shown = answers.examples if mode == "few_shot" else None
        answer = services.rag.answer(
            Request(item.question, answers.name, mode=mode, examples=shown)
        )
        latencies.append((time.perf_counter() - began) * 1000)
        text = "" if answer.refused else without_markers(answer.text)
        em += normalise(text) == normalise(item.gold)
        f1 += token_f1(text, item.gold)
        contained += contains(text, item.gold)
        keyed += has_key_phrase(text, item.key_phrases)
        refused += answer.refused
        replaced += answer.replaced_reason is not None
        degenerate_shown += not answer.refused and degenerate(answer.text) is not None
        if answer.citations and not answer.citations_inferred and not answer.refused:
            cited += 1
            citations += len(answer.citations)
            supported += len(answer.citations) - len(answer.unsupported_citations)
            precise += sum(item.holds(c.source, c.start, len(c.text)) for c in answer.citations)
        elif answer.citations and not answer.refused:  # the sources attached for the model
            inferred += len(answer.citations)
            inferred_precise += sum(item.holds(c.source, c.start, len(c.text))
                                    for c in answer.citations)  # fmt: skip
    n = len(answers.items)
    answered = n - refused
    metrics = {
        "exact_match": em / n, "token_f1": f1 / n, "containment": contained / n,
        "refusal_rate": refused / n, "replaced": replaced, "degenerate_shown": degenerate_shown,
        "answers_with_citations": cited / answered if answered else 0.0,
        "citation_support": supported / citations if citations else 0.0,
        "citation_precision": precise / citations if citations else 0.0,
        "inferred_citation_precision": inferred_precise / inferred if inferred else 0.0,
        "latency_ms_p50": percentile(latencies, 50), "latency_ms_p95": percentile(latencies, 95),
    }  # fmt: skip
    if any(item.key_phrases for item in answers.items):
        metrics["key_phrase"] = keyed / n
    return metrics


def run_answers(
    *, data: Path, quick: bool, sets: Sequence[str] = SETS, modes: Sequence[str] = MODES,
    limit: int | None = None,
) -> Result:  # fmt: skip
    """Every mode on each question set, then refusals per retrieving mode on ClapNQ dev.

    `limit` questions per set (12 with --quick; covid_qa's sample is 200, ClapNQ's 300 + 300).
    """
    limit = limit or (12 if quick else None)
    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        services = short_answer_services(Path(tmp) / "home")
        settings = services.settings
        for name in (s for s in sets if s != "clapnq"):
            answers = load_set(name, data, limit)
            services.ingestor.ingest(answers.paths, collection=name)
            metrics[f"{name}_questions"] = len(answers.items)
            for mode in modes:
                for key, value in _score(services, answers, mode).items():
                    metrics[f"{name}_{mode}_{key}"] = value
        if "clapnq" in sets:
            retrieving = [m for m in modes if m in (AnswerMode.RAG, AnswerMode.EXTRACTIVE)]
            metrics |= clapnq_refusals(services, data, limit, Path(tmp), modes=retrieving,
                                      curve=False)  # fmt: skip
    return Result(
        metrics=metrics,
        context={
            "generator": settings.generator.model, "max_new_tokens": 96,
            "quantize": settings.generator.quantize,
            "template": settings.answers.template, "retrieval_mode": settings.retrieval.mode,
            "top_k": settings.retrieval.top_k, "min_score": settings.retrieval.min_score,
            "answer_min_support": settings.answers.answer_min_support,
            "default_mode": settings.answers.mode, "context": settings.answers.context,
            "extractive_max_sentences": settings.answers.extractive_max_sentences,
            "weak_evidence": [settings.answers.weak_evidence_coverage,
                              settings.answers.weak_evidence_similarity],
            "covid_sample_seed": 2026, "sets": list(sets), "modes": list(modes), "limit": limit,
        },
    )  # fmt: skip
