"""The PDF torture set: every file yields text or a clear reason; no crash, no hang."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ingest.discovery import source_id
from ingest.pipeline import Ingestor
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from tests.fakes import FakeEmbedder

pytestmark = pytest.mark.slow


def test_torture_set_ingests_without_crash_or_hang(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "pdf_torture"
    catalog = [json.loads(line) for line in (folder / "catalog.jsonl").read_text().splitlines()]
    passwords = json.loads((folder / "passwords.json").read_text())
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    ingestor = Ingestor(index=index, embedder=FakeEmbedder(), pdf_timeout_s=60, pdf_memory_mb=2048)
    report = ingestor.ingest([folder], collection="torture", include=["*.pdf"],
                             passwords=passwords)  # fmt: skip
    reasons = {Path(e.path).resolve().as_posix(): e.error for e in report.errors}
    documents = index.documents("torture")
    print(f"\ntorture set: {len(catalog)} files, {report.files_ok} with text, "
          f"{report.files_failed} skipped with a reason, {report.chunks_added} chunks")  # fmt: skip
    for reason, count in Counter(r.split(":")[0] for r in reasons.values()).most_common():
        print(f"  {count:3d}  {reason}")
    for path, reason in sorted(reasons.items()):
        if "text layer" not in reason:
            print(f"  {Path(path).name}: {reason}")
    assert report.files_ok + report.files_failed == len(catalog)
    has_text = [r for r in catalog if (r["pypdf_chars_first40p"] or 0) > 0]
    for row in catalog:
        source = source_id(folder / row["file"])
        assert source in documents, row["file"]
        if row in has_text:
            assert documents[source].status == "ready", (row["file"], reasons.get(source))
        elif documents[source].status != "ready":
            assert reasons[source], row["file"]
