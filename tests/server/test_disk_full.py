"""The disk under RAGQA_HOME fills up during an upload's ingest (a 4 MB tmpfs): a clear 507,
the collection still readable as it was, nothing half published. Needs root to mount the
tmpfs (CI runs as root); skipped otherwise, with the reason."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import create_app
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_fails_the_upload_clearly_and_keeps_the_collection(
    small_disk: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(home=small_disk / "home", retrieval={"min_score": 0.0},
                             server={"rate_limit_per_minute": 0})  # fmt: skip
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    client = create_app(settings, services).test_client()

    def upload(name: str, text: str):  # type: ignore[no-untyped-def]
        return client.post("/api/collections/docs/documents",
                           data={"files": (io.BytesIO(text.encode()), name)},
                           content_type="multipart/form-data")  # fmt: skip

    first = upload("first.md", "# First\n\nThe first document is small and fits.\n")
    assert first.status_code == 200 and first.get_json()["files_ok"] == 1
    big = "\n\n".join(f"Paragraph {j} of the big file, with words {j}." for j in range(9000))
    full = upload("big.md", big)
    assert full.status_code == 507, full.get_json()
    error = full.get_json()["error"]
    assert error["code"] == "disk_full" and "full" in error["message"]
    assert "not published" in error["message"]
    # The collection is as it was: readable, the first document only, counts consistent.
    records = services.index.documents("docs")
    assert [Path(s).name for s in records] == ["first.md"]
    expected = sum(r.chunks for r in records.values())
    assert services.index.count("docs") == expected == services.index.keyword_count("docs")
    found = client.post("/api/search", json={"query": "first document small"})
    assert found.status_code == 200
    assert Path(found.get_json()["hits"][0]["source"]).name == "first.md"
    services.close()
