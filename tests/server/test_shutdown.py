"""`ragqa serve`'s production server (gunicorn) stops gracefully: on SIGTERM an answer being
written still reaches its caller, then the server exits within the grace period."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from server.settings import Settings
from server.wiring import Services
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parents[2]
SERVER = """
import sys, time
from pathlib import Path
from server.production import run_gunicorn
from server.settings import Settings
from server.wiring import Services
from tests.fakes import FakeEmbedder, FakeGenerator

class Slow(FakeGenerator):
    def generate(self, *args, **kwargs):
        time.sleep(3)  # an answer that takes a while to write
        return super().generate(*args, **kwargs)

home, port = Path(sys.argv[1]), int(sys.argv[2])
settings = Settings(_env_file=None, home=home, retrieval={"min_score": 0.0},
                    answers={"mode": "rag"}, server={"shutdown_grace_s": 20, "warm_up": False})
# Nothing opens the store before gunicorn forks its worker (as in `ragqa serve`).
services = Services(settings, embedder=FakeEmbedder(), generator=Slow())
run_gunicorn(services, host="127.0.0.1", port=port, threads=4)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sigterm_lets_the_answer_in_flight_finish(tmp_path: Path, docs: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(_env_file=None, home=tmp_path / "home")  # type: ignore[call-arg]
    ingesting = Services(settings, embedder=FakeEmbedder())
    ingesting.ingestor.ingest([docs], collection="docs")
    ingesting.close()  # the home's store is the server's now
    log = (tmp_path / "server.log").open("wb")  # gunicorn's own lines, for a failure's story
    command = [sys.executable, "-c", SERVER, str(tmp_path / "home"), str(port)]
    server = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                              stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    try:
        for _ in range(300):
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise AssertionError(
                f"the server did not start: {(tmp_path / 'server.log').read_text()}"
            )
        result: dict[str, object] = {}

        def ask() -> None:
            try:
                response = requests.post(f"{base}/api/chat", timeout=60,
                                         json={"question": "Which generator?"})  # fmt: skip
                result["status"], result["body"] = response.status_code, response.json()
            except Exception as error:  # reported below
                result["error"] = repr(error)

        asking = threading.Thread(target=ask)
        asking.start()
        time.sleep(1)  # the answer is being written
        stopped = time.monotonic()
        server.send_signal(signal.SIGTERM)
        asking.join(30)
        assert result.get("status") == 200, result
        assert result["body"]["answer"]  # type: ignore[index]
        server.wait(timeout=25)
        assert time.monotonic() - stopped < 25
        # New connections are refused once it has stopped.
        try:
            requests.get(f"{base}/healthz", timeout=2)
            raise AssertionError("the server still answers after SIGTERM")
        except requests.ConnectionError:
            pass
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
