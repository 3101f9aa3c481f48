"""The server under mixed load for a while: `ragqa serve` (packaged models, the home's store
shared) answering searches and questions while documents are uploaded and deleted over HTTP
and ingested and deleted by `ragqa` commands on the same home, all at once.

Reports each kind's throughput, p50/p95/p99 and statuses, and the server's resident memory
and open file handles (gunicorn master, worker and the home's Chroma server together) sampled
over time: the first sample after warm-up against the last. Goals: no 5xx (a 503 is the busy
model saying so, with Retry-After), memory growth under 5%, no handle growth.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import requests

from bench.report import Result
from bench.serve import DOCS, QUESTIONS, _children, _phase, _port, _rss_kb, wait_ready

Timed = list[tuple[float, int]]


def _fds(pid: int) -> int:
    """Open file handles of the server's processes (and their children)."""
    total = 0
    for proc in [pid, *_children(pid), *[g for c in _children(pid) for g in _children(c)]]:
        try:
            total += len(os.listdir(f"/proc/{proc}/fd"))
        except OSError:
            continue
    return total


class _Load:
    """Threads that each repeat one kind of request until stopped; (seconds, status) each."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.results: dict[str, Timed] = defaultdict(list)
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def repeat(self, kind: str, action: Callable[[int], int], pause: float = 0.0) -> None:
        def loop() -> None:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                started = time.perf_counter()
                try:
                    status = action(n)
                except requests.RequestException:
                    status = 0  # no answer: a hang or a dropped connection
                with self._lock:
                    self.results[kind].append((time.perf_counter() - started, status))
                self.stop.wait(pause)

        thread = threading.Thread(target=loop, name=f"soak-{kind}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=900)


def _mixed_load(load: _Load, env: dict[str, str], files: Path, ragqa: str) -> None:
    base = load.base

    def search(n: int) -> int:
        body = {"query": QUESTIONS[n % len(QUESTIONS)]}
        return requests.post(f"{base}/api/search", json=body, timeout=600).status_code

    def ask(n: int) -> int:
        body = {"question": QUESTIONS[n % len(QUESTIONS)], "mode": "rag"}
        return requests.post(f"{base}/api/chat", json=body, timeout=600).status_code

    def upload_and_delete(n: int) -> int:
        name = f"upload-{n}.md"
        text = f"# Upload {n}\n\nUploaded note number {n} mentions soakword{n}.\n"
        url = f"{base}/api/collections/guide/documents"
        sent = requests.post(url, files={"files": (name, text.encode())}, timeout=600)
        if sent.status_code != 200:
            return sent.status_code
        return requests.delete(f"{url}/{name}", timeout=600).status_code

    def cli_ingest_and_delete(n: int) -> int:
        path = files / f"cli-{n}.md"
        path.write_text(f"# CLI {n}\n\nA note ingested by the command line, number {n}.\n")
        for command in (["ingest", str(path)], ["delete", str(path), "--yes"]):
            done = subprocess.run([ragqa, *command], env=env, capture_output=True, check=False)
            if done.returncode != 0:
                return 500  # a command failure counts as a server error here
        return 200

    load.repeat("search", search)
    load.repeat("search", search)
    load.repeat("answer", ask)
    load.repeat("upload", upload_and_delete, pause=2.0)
    load.repeat("cli", cli_ingest_and_delete, pause=5.0)


def run_soak(*, data: Path, quick: bool) -> Result:
    """Mixed load for 60 s (--quick) or 10 minutes; statuses, latency, memory and handles."""
    duration = 60.0 if quick else 600.0
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-soak-") as home:
        env = {**os.environ, "RAGQA_HOME": home, "RAGQA_SERVER__RATE_LIMIT_PER_MINUTE": "0",
               "RAGQA_GENERATOR__MAX_NEW_TOKENS": "32", "RAGQA_COLLECTION": "guide"}  # fmt: skip
        ragqa = str(Path(sys.executable).parent / "ragqa")
        subprocess.run([ragqa, "ingest", str(DOCS)], env=env, check=True, capture_output=True)
        port = _port()
        server = subprocess.Popen([ragqa, "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        samples: list[tuple[float, int, int]] = []  # (seconds, rss kB, handles)
        try:
            wait_ready(base)
            load = _Load(base)
            files = Path(home) / "cli-files"
            files.mkdir()
            started = time.monotonic()
            _mixed_load(load, env, files, ragqa)
            while time.monotonic() - started < duration:
                samples.append((time.monotonic() - started, _rss_kb(server.pid),
                                _fds(server.pid)))  # fmt: skip
                time.sleep(5)
            load.join()
            samples.append((time.monotonic() - started, _rss_kb(server.pid), _fds(server.pid)))
            wall = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(timeout=120)
    metrics: dict[str, float] = {}
    for kind, results in sorted(load.results.items()):
        metrics |= _phase(kind, results, wall)
    warm = samples[len(samples) // 5]  # the first fifth is warm-up
    last = samples[-1]
    metrics |= {"rss_warm_mb": warm[1] / 1024, "rss_last_mb": last[1] / 1024,
                "rss_growth": (last[1] - warm[1]) / warm[1], "handles_warm": float(warm[2]),
                "handles_last": float(last[2]), "handles_growth": float(last[2] - warm[2]),
                "server_errors_5xx_not_503": float(sum(
                    1 for results in load.results.values() for _, s in results
                    if s == 0 or (s >= 500 and s != 503)))}  # fmt: skip
    return Result(metrics=metrics, context={
        "duration_s": duration,
        "server": "ragqa serve (gunicorn, 1 worker) on a home whose store the CLI shares",
        "load": "2 search clients, 1 rag client (32 new tokens), 1 client uploading and "
                "deleting a file every 2 s, 1 `ragqa ingest` + `ragqa delete` every 5 s",
        "samples": [{"s": round(t, 1), "rss_mb": round(r / 1024, 1), "handles": h}
                    for t, r, h in samples],
        "goals": "server_errors_5xx_not_503 == 0; rss_growth < 0.05; handles_growth <= 0",
    })  # fmt: skip
