"""kill -9 at random moments: nothing acknowledged lost, nothing half visible, no duplicates."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.discovery import source_id

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def helper(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.crash_helper", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip


REPAIRED: list[str] = []  # collections whose vectors a kill damaged and ragqa rebuilt


def verify(home: Path, corpus: Path) -> dict[str, dict[str, object]]:
    process = helper("verify", str(home), str(corpus))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, f"the store cannot be read after a kill:\n{err[-3000:]}"
    state = json.loads(out)
    REPAIRED.extend(state["repaired"])
    documents: dict[str, dict[str, object]] = state["documents"]
    for source, doc in documents.items():
        if doc["status"] == "ready":
            # Fully there: every chunk of the visible version, exactly once.
            assert doc["current"] == doc["chunks"], source
    return documents


def test_kill_9_loses_nothing_acknowledged(shared_data: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(shared_data / "covid_qa" / "documents_txt", corpus)
    files = sorted(corpus.iterdir())
    home = tmp_path / "chroma"
    rng = random.Random(1234)
    acknowledged: set[str] = set()

    started = time.monotonic()  # measure one uninterrupted run to place kills inside it
    probe = helper("ingest", str(tmp_path / "probe"), str(corpus))
    probe.communicate(timeout=600)
    duration = time.monotonic() - started

    kills = 0
    for attempt in range(10):
        # Every file changes before each run, so each run replaces every document.
        for path in files:
            with path.open("a", encoding="utf-8") as out:
                out.write(f"\n\nRevision {attempt}: {rng.random()}\n")
        hashes = {source_id(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
        process = helper("ingest", str(home), str(corpus))
        time.sleep(rng.uniform(0.5, duration))
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=60)
        kills += process.returncode == -signal.SIGKILL
        assert process.returncode in {0, -signal.SIGKILL}, err[-3000:]
        done_now = {line[5:] for line in out.splitlines() if line.startswith("DONE ")}
        acknowledged |= done_now
        documents = verify(home, corpus)
        lost = {s for s in acknowledged if documents.get(s, {}).get("status") != "ready"}
        assert not lost, f"acknowledged but not ready: {sorted(lost)[:3]}"
        # What this run acknowledged is the version now visible.
        stale = [s for s in done_now if documents[s]["hash"] != hashes[s]]
        assert not stale, f"attempt {attempt}: {len(stale)} acknowledged, not visible: {stale[:2]}"

    final = helper("ingest", str(home), str(corpus))
    out, _ = final.communicate(timeout=600)
    assert "FINISHED" in out
    documents = verify(home, corpus)
    assert len(documents) == len(files)
    assert all(doc["status"] == "ready" for doc in documents.values())
    # No orphaned versions and no duplicates are left once a run completes.
    assert all(doc["all"] == doc["chunks"] for doc in documents.values())
    total = json.loads(helper("verify", str(home), str(corpus)).communicate(timeout=120)[0])[
        "total"
    ]
    assert total == sum(int(str(doc["chunks"])) for doc in documents.values())
    print(
        f"\n{kills} kills (of 10 tries) during a {duration:.1f} s ingest; "
        f"{len(acknowledged)} documents acknowledged before the final run, none lost; "
        f"{len(REPAIRED)} damaged vector indexes rebuilt"
    )
    assert kills >= 8
