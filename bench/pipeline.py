"""End-to-end cost with the packaged models: ingest the Debian FAQ, then ask its questions."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.engines import in_fresh_process
from bench.report import Result, percentile
from generation.rag import Request
from server.settings import Settings
from server.wiring import Services

# The reference engines (sentence-transformers and transformers as they are) and the defaults.
BACKENDS: dict[str, dict[str, Any]] = {
    "reference": {"embedder": {"backend": "torch"}, "generator": {"backend": "transformers"}},
    "default": {},
}


def run_pipeline(*, data: Path, quick: bool) -> Result:
    """Ingest throughput (chunks/s), cold and warm re-ingest, and ask latency p50/p95, with the
    reference engines and with the default ones side by side, in one run."""
    faq = data / "debian_faq" / "debian-faq.en.txt"
    questions_file = data / "debian_faq" / "debian_faq_qa.jsonl"
    rows = [json.loads(line) for line in questions_file.read_text(encoding="utf-8").splitlines()]
    questions = [r["question"] for r in rows if r.get("is_question")][: 3 if quick else 20]
    metrics: dict[str, float] = {"questions": len(questions)}
    for name, chosen in BACKENDS.items():
        with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as home:
            measured = in_fresh_process(_measure, chosen, Path(home), faq, questions)
            metrics |= {f"{name}_{k}": v for k, v in measured.items()}
    settings = _settings(BACKENDS["default"], Path("."))
    for key in ("ingest_chunks_per_s", "answer_ms_p50", "answer_ms_p95", "retrieval_ms_p50"):
        metrics[f"default_over_reference_{key}"] = (
            metrics[f"default_{key}"] / metrics[f"reference_{key}"]
        )
    return Result(
        metrics=metrics,
        context={"corpus": str(faq), "max_new_tokens": 64, "top_k": settings.retrieval.top_k,
                 "mode": "rag",
                 "reference": "embedder torch, generator transformers",
                 "default": f"embedder {settings.embedder.backend}, generator "
                            f"{settings.generator.backend}"},
    )  # fmt: skip


def _settings(chosen: dict[str, Any], home: Path) -> Settings:
    settings = Settings(home=home, _env_file=None, **chosen)
    short = settings.generator.model_copy(update={"max_new_tokens": 64})
    return settings.model_copy(update={"generator": short})


def _measure(
    chosen: dict[str, Any], home: Path, faq: Path, questions: list[str]
) -> dict[str, float]:
    services = Services(_settings(chosen, home))
    services.warm_up()
    started = time.perf_counter()
    report = services.ingestor.ingest([faq], collection="bench")
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    services.ingestor.ingest([faq], collection="bench")
    reingest_s = time.perf_counter() - started
    retrieval, total, hits = [], [], 0
    for question in questions:
        answer = services.rag.answer(Request(question, collection="bench", mode="rag"))
        retrieval.append(answer.timings_ms["retrieval"])
        total.append(answer.timings_ms["total"])
        hits += any(c.source == str(faq.resolve()) for c in answer.citations)
    services.close()
    return {
        "chunks": report.chunks_added,
        "ingest_s": ingest_s,
        "ingest_chunks_per_s": report.chunks_added / ingest_s,
        "reingest_s": reingest_s,
        "reingest_over_ingest": reingest_s / ingest_s,
        "retrieval_ms_p50": percentile(retrieval, 50),
        "retrieval_ms_p95": percentile(retrieval, 95),
        "answer_ms_p50": percentile(total, 50),
        "answer_ms_p95": percentile(total, 95),
        "answers_with_citations": hits / len(questions),
    }
