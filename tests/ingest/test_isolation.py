"""Parsing in a worker process: pages come back; a hang, a memory bomb or a crash costs one
file (a LoadError) and the worker is replaced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.isolation import run_isolated, worker_pool
from ingest.loaders import LoadError, load_pdf


def _sleep_forever(path: Path, *, source: str, password: str | None = None) -> list[object]:
    import time

    time.sleep(60)
    return []


def _allocate(path: Path, *, source: str, password: str | None = None) -> list[object]:
    blob = bytearray(1024 * 1024 * 1024)  # 1 GiB, over the limit below
    return [len(blob)]


def _crash(path: Path, *, source: str, password: str | None = None) -> list[object]:
    import os

    os._exit(3)


def test_isolated_parse_returns_pages(shared_data: Path) -> None:
    path = shared_data / "debian_faq" / "debian-faq.en.pdf"
    pages = run_isolated(load_pdf, path, source="s", timeout_s=120, memory_mb=2048)
    assert len(pages) == 73 and pages[0].source == "s"


@pytest.mark.parametrize(
    ("fn", "message"),
    [(_sleep_forever, "longer than 1 s"), (_allocate, "more than 256 MB"),
     (_crash, "crashed \\(exit code 3\\)")],
)  # fmt: skip
def test_isolated_parse_survives_hangs_bombs_and_crashes(
    tmp_path: Path, fn: object, message: str
) -> None:
    with pytest.raises(LoadError, match=message):
        run_isolated(fn, tmp_path / "x.pdf", source="s", timeout_s=1, memory_mb=256)


def _pid(path: Path, *, source: str, password: str | None = None) -> int:
    return os.getpid()


def test_a_pool_reuses_its_worker_and_replaces_one_that_died(tmp_path: Path) -> None:
    with worker_pool(size=1, memory_mb=512) as pool:
        first = pool.call(_pid, tmp_path / "a", source="a", timeout_s=30)
        assert pool.call(_pid, tmp_path / "b", source="b", timeout_s=30) == first
        assert first != os.getpid()
        with pytest.raises(LoadError, match="crashed"):
            pool.call(_crash, tmp_path / "c", source="c", timeout_s=30)
        replaced = pool.call(_pid, tmp_path / "d", source="d", timeout_s=30)
        assert replaced != first
    with pytest.raises(ProcessLookupError):
        os.kill(replaced, 0)  # the pool stopped its workers when the block ended
