"""Prometheus metrics with the official client: HTTP requests and latency by route, retrieval and
generation time, tokens in and out, refusals by reason, the model's queue, ingests and
feedback. `GET /metrics` serves them in the text format.

Each app has its own registry (tests build many apps in one process). Under several worker
processes, set PROMETHEUS_MULTIPROC_DIR (an empty folder) before starting them: every process
then writes its values there, and /metrics sums them (the client's multi-process mode).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from generation.types import Answer
from ingest.report import IngestReport

# Latency buckets (seconds) from a cached search to a long CPU answer.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The server's metrics, registered on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ragqa_http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=r)  # fmt: skip
        self.latency = Histogram("ragqa_http_request_seconds", "Time to answer a request "
                                 "(for a stream: to its first byte).", ["route"],
                                 buckets=BUCKETS, registry=r)  # fmt: skip
        self.stage = Histogram("ragqa_answer_stage_seconds", "Time answers spent retrieving "
                               "and generating.", ["stage"], buckets=BUCKETS,
                               registry=r)  # fmt: skip
        self.tokens = Counter("ragqa_tokens", "Tokens given to the model (in) and written by it "
                              "(out).", ["direction"], registry=r)  # fmt: skip
        self.answers = Counter("ragqa_answers", "Answers by mode and whether they were refused.",
                               ["mode", "refused"], registry=r)  # fmt: skip
        self.refusals = Counter("ragqa_refusals", "Refused answers by reason.", ["reason"],
                                registry=r)  # fmt: skip
        self.queue = Gauge("ragqa_model_queue_depth", "Requests running on or waiting for the "
                           "model.", registry=r, multiprocess_mode="livesum")  # fmt: skip
        self.ingested = Counter("ragqa_ingest_files", "Files ingested, by result.", ["result"],
                                registry=r)  # fmt: skip
        self.chunks = Counter("ragqa_ingest_chunks", "Chunks added by ingests.", registry=r)
        self.feedback = Counter("ragqa_feedback", "Ratings of answers, by rating.", ["rating"],
                                registry=r)  # fmt: skip

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def answer(self, answer: Answer) -> None:
        """Count one answer: its mode, refusal, stage times and tokens."""
        self.answers.labels(answer.mode, str(answer.refused).lower()).inc()
        if answer.refused:
            self.refusals.labels(answer.refusal_reason or "unknown").inc()
        for stage in ("retrieval", "generation"):
            if stage in answer.timings_ms:
                self.stage.labels(stage).observe(answer.timings_ms[stage] / 1000)
        if answer.context is not None:
            self.tokens.labels("in").inc(answer.context.prompt_tokens)
        self.tokens.labels("out").inc(answer.completion_tokens)

    def ingest(self, report: IngestReport) -> None:
        """Count one ingest run's files and chunks."""
        for result, count in (("ok", report.files_ok - report.files_unchanged),
                              ("unchanged", report.files_unchanged),
                              ("failed", report.files_failed)):  # fmt: skip
            if count:
                self.ingested.labels(result).inc(count)
        self.chunks.inc(report.chunks_added)

    def exposition(self, queue_depth: int) -> tuple[bytes, str]:
        """The text format and its content type (all processes' values in multi-process mode)."""
        self.queue.set(queue_depth)
        registry: Any = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
