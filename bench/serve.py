"""The real server under load: `ragqa serve` (gunicorn, the packaged models) in a child
process, driven over HTTP by concurrent clients.

Phases: searches (retrieval only) by 5 clients, the model's seats (queries are embedded
there); answers written by the model (`rag`) by 2 clients; saturation, 24 clients asking at
once against a model queue of 4 (`RAGQA_GENERATOR__MAX_WAITING`), where the overflow must be
503, never another 5xx or a hang; past the rate limit, one address sending 20 more searches
than it may (429); then 1,000 searches after warm-up, with the server's resident memory
before and after.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.report import Result, percentile

DOCS = Path(__file__).resolve().parents[1] / "docs"
LIMIT = 40  # requests per minute per address
SEATS = 5  # the model's: RAGQA_GENERATOR__MAX_WAITING=4 waiting, and the one running
_ADDRESSES = itertools.count(1)  # a client address per request, never reused
QUESTIONS = ["How do I ingest a folder?", "What does the extractive mode do?",
             "How are PDFs read?", "Which settings change the chunk size?",
             "How do I delete a collection?", "What does a reader key allow?"]  # fmt: skip


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rss_kb(pid: int) -> int:
    """Resident memory of the server: its gunicorn master and worker together."""
    total = 0
    for proc in [pid, *_children(pid)]:
        for line in Path(f"/proc/{proc}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def wait_ready(base: str, timeout_s: float = 300) -> None:
    """Until the server at `base` says it is ready (models loaded, store reachable)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become ready")


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def _drive(base: str, path: str, bodies: list[dict[str, str]], clients: int, *,
           one_address: bool = False) -> tuple[list[tuple[float, int]], float]:  # fmt: skip
    """Send every body to `path` with `clients` at a time: (seconds, status) each, wall s.
    Each request comes from its own address (X-Forwarded-For, one trusted proxy), so the rate
    limit never counts, unless `one_address`."""

    def one(body: dict[str, str]) -> tuple[float, int]:
        n = next(_ADDRESSES)
        address = "192.0.2.1" if one_address else f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        sent = {"X-Forwarded-For": address}
        started = time.perf_counter()
        try:
            status = requests.post(base + path, json=body, headers=sent, timeout=600).status_code
        except requests.RequestException:
            status = 0  # no answer at all: a hang or a dropped connection
        return time.perf_counter() - started, status

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, bodies))
    return results, time.perf_counter() - started


def _phase(name: str, results: list[tuple[float, int]], wall: float) -> dict[str, float]:
    ok = [t for t, s in results if s == 200] or [t for t, _ in results]
    statuses = Counter(s for _, s in results)
    metrics = {f"{name}_requests": float(len(results)), f"{name}_rps": len(results) / wall}
    for q in (50, 95, 99):
        metrics[f"{name}_p{q}_ms"] = percentile(ok, q) * 1000
    for status, count in sorted(statuses.items()):
        metrics[f"{name}_status_{status}"] = float(count)
    return metrics


def run_serve(*, data: Path, quick: bool) -> Result:
    """Throughput, latency percentiles and statuses per phase; memory growth; 5xx count."""
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-serve-") as home:
        env = {**os.environ, "RAGQA_HOME": home, "RAGQA_SERVER__RATE_LIMIT_PER_MINUTE": str(LIMIT),
               "RAGQA_SERVER__TRUSTED_PROXIES": "1",
               "RAGQA_GENERATOR__MAX_WAITING": "4", "RAGQA_GENERATOR__MAX_NEW_TOKENS": "48",
               "RAGQA_COLLECTION": "guide"}  # fmt: skip
        ragqa = [str(Path(sys.executable).parent / "ragqa")]
        subprocess.run([*ragqa, "ingest", str(DOCS)], env=env, check=True, capture_output=True)
        port = _port()
        server = subprocess.Popen([*ragqa, "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base)
            metrics: dict[str, float] = {}
            searches = [
                {"query": QUESTIONS[i % len(QUESTIONS)]} for i in range(80 if quick else 400)
            ]
            metrics |= _phase("search", *_drive(base, "/api/search", searches, SEATS))
            asks = [{"question": q, "mode": "rag"} for q in QUESTIONS[: 2 if quick else 6]]
            metrics |= _phase("answer", *_drive(base, "/api/chat", asks, 2))
            burst = [{"question": QUESTIONS[i % len(QUESTIONS)], "mode": "rag"} for i in range(24)]
            metrics |= _phase("saturated", *_drive(base, "/api/chat", burst, 24))
            limited = [{"query": QUESTIONS[i % len(QUESTIONS)]} for i in range(LIMIT + 20)]
            metrics |= _phase("limited", *_drive(base, "/api/search", limited, SEATS,
                                                 one_address=True))  # fmt: skip
            before = _rss_kb(server.pid)
            more = [{"query": QUESTIONS[i % len(QUESTIONS)]} for i in range(300 if quick else 1000)]
            metrics |= _phase("memory", *_drive(base, "/api/search", more, SEATS))
            after = _rss_kb(server.pid)
            metrics |= {"rss_before_mb": before / 1024, "rss_after_mb": after / 1024,
                        "rss_growth": (after - before) / before}  # fmt: skip
            metrics["server_errors_5xx_not_503"] = float(sum(
                v for k, v in metrics.items() if "_status_5" in k and not k.endswith("_503")
            ) + sum(v for k, v in metrics.items() if k.endswith("_status_0")))  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=120)
    return Result(metrics=metrics, context={
        "server": "ragqa serve (gunicorn, 1 worker, 13 threads: 5 model seats + 8), packaged "
                  "models, behind one (simulated) trusted proxy",
        "model_queue": "RAGQA_GENERATOR__MAX_WAITING=4, max_new_tokens 48",
        "rate_limit": f"{LIMIT} per minute per address; the limited phase sends {LIMIT + 20} "
                      "searches from one address (expect 20 x 429), the others one per address",
        "goals": "past saturation only 429/503 (server_errors_5xx_not_503 == 0, no status 0 = "
                 "hang or dropped); rss_growth < 0.05 over the memory phase",
    })  # fmt: skip
