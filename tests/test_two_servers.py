"""Past one machine: two `ragqa serve` processes, each with its own RAGQA_HOME (as on two
machines), behind one Chroma server (`chroma run` on loopback) and one PostgreSQL database,
both started by the test. Everything that must be shared is: a key made for one works on the
other; a document uploaded through one is found by the other in every retrieval mode with the
same ranking, and its ingest job answers there; an answer given by one is rated through the
other; a document deleted through the other is gone from the first, in every mode."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.server.test_shutdown import free_port
from tests.server.test_store_outage import start_chroma
from tests.test_end_to_end import BIN, serving

pytestmark = pytest.mark.model
MODES = ("dense", "keyword", "hybrid")


@pytest.fixture
def chroma_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    process = start_chroma(tmp_path / "chroma-server", port)
    yield port
    process.kill()
    process.wait()


def ranking(url: str, key: str, query: str, mode: str) -> list[tuple[str, str, float]]:
    response = requests.post(
        f"{url}/api/search", headers={"Authorization": f"Bearer {key}"}, timeout=30,
        json={"query": query, "retrieval_mode": mode, "k": 5, "collection": "docs"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return [(Path(h["source"]).name, h["text"], round(h["score"], 6))
            for h in response.json()["hits"]]  # fmt: skip


def upload(url: str, key: str, path: Path) -> requests.Response:
    with path.open("rb") as file:
        return requests.post(f"{url}/api/collections/docs/documents", timeout=120,
                             headers={"Authorization": f"Bearer {key}"},
                             files=[("files", (path.name, file))])  # fmt: skip


def test_two_servers_share_everything(
    tiny_embedder: Path, postgres_url: str, chroma_port: int, tmp_path: Path
) -> None:
    common = {**os.environ, "RAGQA_EMBEDDER__MODEL": str(tiny_embedder),
              "RAGQA_SERVER__WARM_UP": "false", "RAGQA_SERVER__RATE_LIMIT_PER_MINUTE": "0",
              "RAGQA_CHROMA__HOST": "127.0.0.1", "RAGQA_CHROMA__PORT": str(chroma_port),
              "RAGQA_DATABASE__URL": postgres_url, "RAGQA_RETRIEVAL__MIN_SCORE": "0"}  # fmt: skip
    env_a = {**common, "RAGQA_HOME": str(tmp_path / "machine-a")}
    env_b = {**common, "RAGQA_HOME": str(tmp_path / "machine-b")}
    made = subprocess.run(
        [str(BIN / "ragqa"), "keys", "create", "--role", "writer", "--json"],
        env=env_a, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["secret"]
    auth = {"Authorization": f"Bearer {key}"}
    guide = tmp_path / "guide.md"
    guide.write_text(
        "# Backups\n\nThe nightly backup of the ledger runs at 02:00 and keeps ninety copies.\n\n"
        "# Restores\n\nA restore of the ledger from a backup takes about twenty minutes.\n"
    )
    other = tmp_path / "other.md"
    other.write_text("# Holidays\n\nThe office closes for the winter holidays in December.\n")
    with serving(env_a, tmp_path / "a.log") as a, serving(env_b, tmp_path / "b.log") as b:
        for url in (a, b):  # the key made on machine A is required, and valid, on both
            assert requests.get(f"{url}/api/collections", timeout=30).status_code == 401
            assert requests.get(f"{url}/api/collections", headers=auth, timeout=30).ok
        # B searches first (an index of its own would be built now, and miss what follows).
        assert upload(a, key, other).status_code == 200
        assert {n for n, _, _ in ranking(b, key, "winter holidays", "keyword")} == {"other.md"}
        uploaded = upload(a, key, guide)
        assert uploaded.status_code == 200, uploaded.text
        job = requests.get(f"{b}/api/jobs/{uploaded.json()['job_id']}", headers=auth, timeout=30)
        assert job.status_code == 200 and job.json()["status"] == "done", job.text
        for mode in MODES:
            seen_a = ranking(a, key, "ledger backup restore", mode)
            seen_b = ranking(b, key, "ledger backup restore", mode)
            # (the tiny embedder's vectors are random: only BM25 must put the guide first)
            assert "guide.md" in {name for name, _, _ in seen_a}, (mode, seen_a)
            assert mode == "dense" or seen_a[0][0] == "guide.md", (mode, seen_a)
            assert seen_b == seen_a, mode  # same hits, same order, same scores
        listed = requests.get(f"{b}/api/collections/docs/documents", headers=auth, timeout=30)
        assert sorted(Path(d["source"]).name for d in listed.json()["documents"]) == [
            "guide.md", "other.md"]  # fmt: skip
        asked = requests.post(f"{a}/api/chat", headers=auth, timeout=120,
                              json={"question": "When does the ledger backup run?",
                                    "collection": "docs", "mode": "extractive"})  # fmt: skip
        assert asked.status_code == 200, asked.text
        answer_id = asked.json()["answer_id"]
        rated = requests.post(f"{b}/api/feedback", headers=auth, timeout=30,
                              json={"answer_id": answer_id, "rating": "up"})  # fmt: skip
        assert rated.status_code == 201, rated.text
        gone = requests.delete(f"{b}/api/collections/docs/documents/guide.md", headers=auth,
                               timeout=60)  # fmt: skip
        assert gone.status_code == 200 and gone.json()["chunks_removed"] > 0, gone.text
        for mode in MODES:
            for url in (a, b):
                names = {name for name, _, _ in ranking(url, key, "ledger backup", mode)}
                assert "guide.md" not in names and names <= {"other.md"}, (mode, url)
    exported = subprocess.run([str(BIN / "ragqa"), "feedback", "export"], env=env_b,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(line)["rating"] for line in exported.stdout.splitlines()] == ["up"]
