"""End-to-end cost with the packaged models: ingest the Debian FAQ, then ask its questions."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from bench.report import Result, percentile
from generation.rag import Request
from server.settings import Settings
from server.wiring import Services


def run_pipeline(*, data: Path, quick: bool) -> Result:
    """Ingest throughput (chunks/s), cold and warm re-ingest, and ask latency p50/p95."""
    faq = data / "debian_faq" / "debian-faq.en.txt"
    questions_file = data / "debian_faq" / "debian_faq_qa.jsonl"
    rows = [json.loads(line) for line in questions_file.read_text(encoding="utf-8").splitlines()]
    questions = [r["question"] for r in rows if r.get("is_question")][: 3 if quick else 20]
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as home:
        settings = Settings(home=Path(home), generator={"max_new_tokens": 64}, _env_file=None)
        services = Services(settings)
        services.warm_up()
        started = time.perf_counter()
        report = services.ingestor.ingest([faq], collection="bench")
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        services.ingestor.ingest([faq], collection="bench")
        reingest_s = time.perf_counter() - started
        retrieval, total, hits = [], [], 0
        for question in questions:
            answer = services.rag.answer(Request(question, collection="bench"))
            retrieval.append(answer.timings_ms["retrieval"])
            total.append(answer.timings_ms["total"])
            hits += any(c.source == str(faq.resolve()) for c in answer.citations)
    return Result(
        metrics={
            "chunks": report.chunks_added,
            "ingest_s": ingest_s,
            "ingest_chunks_per_s": report.chunks_added / ingest_s,
            "reingest_s": reingest_s,
            "reingest_over_ingest": reingest_s / ingest_s,
            "questions": len(questions),
            "retrieval_ms_p50": percentile(retrieval, 50),
            "retrieval_ms_p95": percentile(retrieval, 95),
            "answer_ms_p50": percentile(total, 50),
            "answer_ms_p95": percentile(total, 95),
            "answers_with_citations": hits / len(questions),
        },
        context={"corpus": str(faq), "max_new_tokens": 64, "top_k": settings.retrieval.top_k},
    )
