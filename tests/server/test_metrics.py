"""GET /metrics over real HTTP, read with Prometheus' own text parser; multi-process mode."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from server.wiring import Services
from tests.server.live import serve

REPO = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from the Prometheus text format."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_answers_ingests_and_feedback(
    services: Services, docs: Path
) -> None:
    services.ingestor.ingest([docs], collection="docs")
    with serve(services) as base:
        answer = requests.post(f"{base}/api/chat", json={"question": "Which generator?"},
                               timeout=60).json()  # fmt: skip
        requests.post(f"{base}/api/feedback", timeout=60,
                      json={"answer_id": answer["answer_id"], "rating": "down"})  # fmt: skip
        requests.post(f"{base}/api/collections/docs/documents", timeout=60,
                      files={"files": ("more.md", io.BytesIO(b"# More\n\nText."))})  # fmt: skip
        requests.get(f"{base}/no/such/page", timeout=60)
        response = requests.get(f"{base}/metrics", timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(response.text)
    chat = ("ragqa_http_requests_total", (("method", "POST"), ("route", "chat.chat"),
                                          ("status", "200")))  # fmt: skip
    assert found[chat] == 1
    unmatched = ("ragqa_http_requests_total", (("method", "GET"), ("route", "unmatched"),
                                               ("status", "404")))  # fmt: skip
    assert found[unmatched] == 1  # unknown paths share one label value
    assert found[("ragqa_http_request_seconds_count", (("route", "chat.chat"),))] == 1
    answered = {k[1]: v for k, v in found.items() if k[0] == "ragqa_answers_total"}
    assert sum(answered.values()) == 1 and all(dict(k)["mode"] == "rag" for k in answered)
    refused = sum(v for k, v in answered.items() if dict(k)["refused"] == "true")
    by_reason = sum(v for k, v in found.items() if k[0] == "ragqa_refusals_total")
    assert by_reason == refused  # each refusal counted under its reason
    assert found[("ragqa_tokens_total", (("direction", "in"),))] > 0
    assert found[("ragqa_answer_stage_seconds_count", (("stage", "retrieval"),))] == 1
    assert found[("ragqa_feedback_total", (("rating", "down"),))] == 1
    assert found[("ragqa_ingest_files_total", (("result", "ok"),))] == 1
    assert found[("ragqa_ingest_chunks_total", ())] >= 1
    assert found[("ragqa_model_queue_depth", ())] == 0
    assert "Which generator" not in response.text  # numbers, never text


WORKER = """
import sys
from server.metrics import Metrics
m = Metrics()
m.request("search.search", "POST", 200, 0.01)
if sys.argv[1] == "read":
    sys.stdout.write(m.exposition(0)[0].decode())
"""


def test_several_worker_processes_are_summed_in_multi_process_mode(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER, "count"], env=env, cwd=REPO, check=True)
    out = subprocess.run([sys.executable, "-c", WORKER, "read"], env=env, cwd=REPO, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    key = ("ragqa_http_requests_total", (("method", "POST"), ("route", "search.search"),
                                         ("status", "200")))  # fmt: skip
    assert samples(out)[key] == 3  # two workers and the one that answers the scrape
