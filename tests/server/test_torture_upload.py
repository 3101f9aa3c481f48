"""The PDF torture set through HTTP upload: every file is answered with text or a reason in its
report, never a 5xx or a hang, and the server keeps answering meanwhile and after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.server.live import serve

pytestmark = pytest.mark.slow


def test_every_torture_pdf_uploads_with_text_or_a_reason(
    shared_data: Path, tmp_path: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(home=tmp_path / "home", server={"rate_limit_per_minute": 0})
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    folder = shared_data / "pdf_torture"
    catalog = [json.loads(line) for line in (folder / "catalog.jsonl").read_text().splitlines()]
    results: dict[str, dict[str, object]] = {}
    with serve(services) as base:
        for row in catalog:
            path = folder / row["file"]
            name = f"{len(results):03d}-{path.name}"  # some names repeat across folders
            response = requests.post(f"{base}/api/collections/torture/documents", timeout=300,
                                     files={"files": (name, path.read_bytes())})  # fmt: skip
            assert response.status_code == 200, (row["file"], response.status_code, response.text)
            results[row["file"]] = response.json()
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        listed = requests.get(f"{base}/api/collections/torture/documents", timeout=30).json()
        found = requests.post(f"{base}/api/search", json={"query": "the", "collection": "torture"},
                              timeout=60)  # fmt: skip
        assert found.status_code == 200
    for file, report in results.items():
        assert report["files_ok"] + report["files_failed"] == 1, (file, report)
        if report["files_failed"]:
            assert report["errors"][0]["error"], file  # a reason
    # Every file with a text layer is read, except the protected ones: an upload carries no
    # password, and their reason says a password is needed.
    has_text = [r["file"] for r in catalog if (r["pypdf_chars_first40p"] or 0) > 0]
    unread = [f for f in has_text if results[f]["files_ok"] != 1]
    reasons = {f: str(results[f]["errors"][0]["error"]).lower() for f in unread}  # type: ignore[index]
    assert all("password" in r for r in reasons.values()), reasons
    assert len(listed["documents"]) == len(catalog)
