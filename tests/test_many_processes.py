"""One home, many processes: `ragqa ingest` and `ragqa delete` run while `ragqa serve` (two
worker processes) answers searches on the same RAGQA_HOME. Every acknowledged document is
found at the server's next search and every deleted one is gone, with no error on the way;
a command alone on a home takes it over when the server has gone, and one that finds the
home owned by another waits, then says who holds it."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.test_end_to_end import BIN, serving

pytestmark = pytest.mark.model


def ragqa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ragqa"), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def found(url: str, token: str, mode: str) -> set[str]:
    """The file names a search for `token` returns from the server."""
    response = requests.post(f"{url}/api/search", timeout=30,
                             json={"query": token, "retrieval_mode": mode, "k": 5})  # fmt: skip
    assert response.status_code == 200, response.text
    return {Path(h["source"]).name for h in response.json()["hits"] if token in h["text"]}


def test_cli_ingest_and_delete_while_the_server_answers(tiny_embedder: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    env = {**os.environ, "RAGQA_HOME": str(home), "RAGQA_EMBEDDER__MODEL": str(tiny_embedder),
           "RAGQA_SERVER__WARM_UP": "false",
           "RAGQA_SERVER__RATE_LIMIT_PER_MINUTE": "0"}  # fmt: skip
    first = docs / "first.md"
    first.write_text("The first note mentions token alpha0zz only.\n")
    assert ragqa(env, "ingest", str(first)).returncode == 0  # before the server: embedded
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def search_all_the_time(url: str) -> None:
        while not stop.is_set():
            response = requests.post(f"{url}/api/search", json={"query": "note token"}, timeout=30)
            statuses[response.status_code] += 1

    with serving({**env}, home / "serve.log", "--workers", "2") as url:
        searcher = threading.Thread(target=search_all_the_time, args=(url,))
        searcher.start()
        try:
            assert found(url, "alpha0zz", "keyword") == {"first.md"}
            acknowledged, deleted = ["first.md"], []
            for i in range(1, 5):
                path = docs / f"note{i}.md"
                path.write_text(f"Note {i} carries the token beta{i}zz and nothing else.\n")
                done = ragqa(env, "ingest", str(path), "--json")
                assert done.returncode == 0, done.stderr
                assert json.loads(done.stdout)["files_ok"] == 1
                acknowledged.append(path.name)
                for mode in ("keyword", "dense", "hybrid"):  # seen at once, in every mode
                    assert path.name in found(url, f"beta{i}zz", mode), mode
                if i % 2 == 0:
                    gone = ragqa(env, "delete", str(path), "--yes")
                    assert gone.returncode == 0, gone.stderr
                    deleted.append(path.name)
                    assert found(url, f"beta{i}zz", "keyword") == set()
                    assert found(url, f"beta{i}zz", "hybrid") == set()
            listed = requests.get(f"{url}/api/collections/docs/documents", timeout=30).json()
            names = sorted(Path(d["source"]).name for d in listed["documents"])
            assert names == sorted(set(acknowledged) - set(deleted))
            # A command run while the server runs uses the same store.
            shown = ragqa(env, "documents", "--json")
            assert shown.returncode == 0, shown.stderr
            assert (
                sorted(Path(d["source"]).name for d in json.loads(shown.stdout)["documents"])
                == names
            )
        finally:
            stop.set()
            searcher.join(timeout=60)
    assert statuses and set(statuses) == {200}, statuses
    # The server has gone: a command alone takes the home over and finds everything kept.
    after = ragqa(env, "documents", "--json")
    assert after.returncode == 0, after.stderr
    assert sorted(Path(d["source"]).name for d in json.loads(after.stdout)["documents"]) == names


def test_a_command_waits_for_the_owner_then_says_who_it_is(tmp_path: Path) -> None:
    from retrieval.home_store import StoreBusyError, lock_store, release_store

    store = tmp_path / "home" / "chroma"
    holder = subprocess.Popen(  # another process owns the store for a while
        [str(BIN / "python"), "-c", "import sys, time; from pathlib import Path; "
         "from retrieval.home_store import lock_store; "
         "lock_store(Path(sys.argv[1]), wait_s=0); print('held', flush=True); time.sleep(30)",
         str(store)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusyError, match=rf"in use by pid {holder.pid}.*ragqa serve"):
            lock_store(store, wait_s=0.5)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert lock_store(store, wait_s=5) is not None  # free once its owner has gone
    release_store(store)
