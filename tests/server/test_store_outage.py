"""The Chroma server killed and restarted under load: while it is down every request fails at
once with 503 `store_unavailable` and Retry-After (never another 5xx or a hang), and ragqa
recovers by itself when it is back. Then the home's own Chroma server (the one `ragqa serve`
runs) is killed: its keeper restarts it on the same port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from retrieval.home_store import live_server, server_file
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.server.live import serve
from tests.server.test_shutdown import free_port

pytestmark = pytest.mark.slow
CHROMA = Path(sys.executable).parent / "chroma"


def start_chroma(path: Path, port: int) -> subprocess.Popen[bytes]:
    command = [str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError("chroma run did not start")


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[tuple[Path, int, subprocess.Popen[bytes]]]:
    path, port = tmp_path / "chroma-server", free_port()
    process = start_chroma(path, port)
    yield path, port, process
    process.kill()
    process.wait()


def test_requests_fail_fast_while_chroma_is_down_and_recover(
    chroma: tuple[Path, int, subprocess.Popen[bytes]], tmp_path: Path,
    make_settings: MakeSettings, docs: Path,
) -> None:  # fmt: skip
    path, port, first = chroma
    settings = make_settings(home=tmp_path / "home", retrieval={"min_score": 0.0},
                             chroma={"host": "127.0.0.1", "port": port},
                             server={"rate_limit_per_minute": 0})  # fmt: skip
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    services.ingestor.ingest([docs], collection="docs")
    statuses: Counter[int] = Counter()
    stop = threading.Event()
    with serve(services) as base:

        def search() -> requests.Response:
            return requests.post(f"{base}/api/search", json={"query": "install"}, timeout=10)

        def load() -> None:
            while not stop.is_set():
                statuses[search().status_code] += 1

        assert search().status_code == 200
        worker = threading.Thread(target=load)
        worker.start()
        try:
            first.kill()  # chroma goes down
            first.wait()
            started = time.monotonic()
            down = search()
            assert time.monotonic() - started < 2  # fails fast, no hang
            assert down.status_code == 503 and down.headers["Retry-After"]
            assert down.json()["error"]["code"] == "store_unavailable"
            chat = requests.post(f"{base}/api/chat", json={"question": "How to install?"},
                                 timeout=10)  # fmt: skip
            assert chat.status_code == 503
            restarted = start_chroma(path, port)
            try:
                for _ in range(50):  # back without restarting ragqa
                    if search().status_code == 200:
                        break
                    time.sleep(0.1)
                hits = search().json()["hits"]
                assert any(h["source"].endswith("install.md") for h in hits)
            finally:
                stop.set()
                worker.join(timeout=30)
                restarted.kill()
                restarted.wait()
        finally:
            stop.set()
    services.close()
    assert set(statuses) <= {200, 503} and statuses[200] and statuses[503], statuses


def test_the_home_chroma_server_is_restarted_on_its_port(tmp_path: Path) -> None:
    store = tmp_path / "home" / "chroma"
    keeper = subprocess.Popen(  # a process keeping the home's server, as `ragqa serve` does
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from retrieval.home_store import keep_home_server; "
         "keep_home_server(Path(sys.argv[1]), wait_s=5); print('up', flush=True); "
         "time.sleep(60)", str(store)],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert keeper.stdout is not None and keeper.stdout.readline().strip() == "up"
        port = live_server(store)
        assert port is not None
        first = json.loads(server_file(store).read_text())["pid"]
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid = json.loads(server_file(store).read_text())["pid"]
            if pid != first and live_server(store) == port:
                break
            time.sleep(0.1)
        assert pid != first and live_server(store) == port  # a new server, on the same port
    finally:
        keeper.kill()  # its server dies with it
        keeper.wait()
        if keeper.stdout is not None:
            keeper.stdout.close()
    deadline = time.monotonic() + 10
    while live_server(store) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_server(store) is None
