"""kill -9 of the whole server (gunicorn master, worker and the home's Chroma server) at random
moments while it ingests uploads and answers questions, 20 times: after each restart no
acknowledged document is lost or duplicated, the store's check passes, and every stored chunk
is found by its own text."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from server.settings import Settings
from server.wiring import Services
from tests.retrieval.test_recovery import cosine
from tests.test_end_to_end import BIN, free_port

pytestmark = pytest.mark.model
KILLS = 20
ARTEFACTS = Path(
    os.environ.get(
        "RAGQA_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"
    )
)


def start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("ab") as err:
        server = subprocess.Popen([str(BIN / "ragqa"), "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=err,
                                  start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return server, base
        except requests.RequestException:  # not listening yet, or busy repairing the home
            pass
        time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    raise AssertionError(f"the server did not start: {log.read_text()[-2000:]}")


def upload(base: str, round_: int, stop: threading.Event, acknowledged: set[str]) -> None:
    """Upload notes one by one until stopped or killed; those answered 200 are acknowledged."""
    for i in itertools.count():
        if stop.is_set():
            return
        name = f"k{round_}-{i}.md"
        text = f"# Note {name}\n\nThe note {name} holds the word w{round_}x{i}q.\n"
        try:
            sent = requests.post(f"{base}/api/collections/docs/documents", timeout=30,
                                 files={"files": (name, text.encode())})  # fmt: skip
        except requests.RequestException:
            return  # killed mid-request: not acknowledged
        if sent.status_code == 200 and sent.json()["files_ok"] == 1:
            acknowledged.add(name)


def ask(base: str, stop: threading.Event, answered: list[int]) -> None:
    while not stop.is_set():
        try:
            reply = requests.post(f"{base}/api/chat", json={"question": "which note?"},
                                  timeout=30)  # fmt: skip
        except requests.RequestException:
            return
        answered.append(reply.status_code)


def test_kill_9_of_the_server_loses_nothing_acknowledged(tiny_embedder: Path,
                                                         tmp_path: Path) -> None:  # fmt: skip
    home = tmp_path / "home"
    env = {**os.environ, "RAGQA_HOME": str(home), "RAGQA_EMBEDDER__MODEL": str(tiny_embedder),
           "RAGQA_ANSWERS__MODE": "extractive", "RAGQA_SERVER__RATE_LIMIT_PER_MINUTE": "0",
           "RAGQA_RETRIEVAL__MIN_SCORE": "0"}  # fmt: skip
    acknowledged: set[str] = set()
    answered: list[int] = []
    chance = random.Random(16)
    for kill in range(KILLS):
        server, base = start(env, tmp_path / "serve.log")
        stop = threading.Event()
        workers = [threading.Thread(target=upload, args=(base, kill, stop, acknowledged)),
                   threading.Thread(target=ask, args=(base, stop, answered))]  # fmt: skip
        for worker in workers:
            worker.start()
        time.sleep(chance.uniform(0.2, 2.0))
        os.killpg(server.pid, signal.SIGKILL)  # master, worker and the home's Chroma server
        server.wait()
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert acknowledged and 200 in answered
    assert set(answered) <= {200, 404, 503}  # 404 before the first upload made the collection
    # The home, opened alone after the last kill: repaired if need be, complete, consistent.
    settings = Settings(_env_file=None, home=home,  # type: ignore[call-arg]
                        embedder={"model": str(tiny_embedder)})  # fmt: skip
    services = Services(settings)
    index = services.index
    index.check()
    records = index.documents("docs")
    stored = {Path(source).name for source in records}
    assert acknowledged <= stored, sorted(acknowledged - stored)
    assert all(r.status == "ready" for r in records.values())
    chunks = []
    for source, record in records.items():
        visible = index.chunks_of("docs", source)
        assert len(visible) == record.chunks, source  # each document once, whole
        chunks += visible
    assert len({c.id for c in chunks}) == len(chunks)
    # Found by its own words, and its vector is the embedder's vector of its text (the tiny
    # embedder's random weights put these near-identical notes too close for a top-k check).
    vectors = index.vectors("docs", [c.id for c in chunks])
    embedded = services.embedder.embed_documents([c.text for c in chunks])
    for chunk, expected in zip(chunks, embedded, strict=True):
        word = chunk.text.split()[-1].rstrip(".")
        assert chunk.id in {c.id for c, _ in index.keyword_query("docs", word, k=3)}, word
        assert cosine(vectors[chunk.id], expected) > 0.999, chunk.text
    services.close()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)  # the counts, for the record
    (ARTEFACTS / "server-kills.json").write_text(json.dumps({
        "kills": KILLS, "acknowledged": len(acknowledged), "documents_stored": len(records),
        "chunks_checked": len(chunks), "answers": dict(Counter(answered)),
        "repaired_after_last_kill": index.repaired}, indent=2))  # fmt: skip
