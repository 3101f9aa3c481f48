"""Two clients ingesting the same files into the same collection at once: no duplicates, no
errors. Two Services on one home stand for two processes: each has its own ingest pipeline
(and its locks) and its own connection to the keyword index."""

from __future__ import annotations

import threading
from pathlib import Path

from ingest.report import IngestReport
from server.settings import Settings
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder


def test_the_same_files_ingested_twice_at_once_are_stored_once(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        paragraphs = "\n\n".join(f"File {i} paragraph {j} says thing {i}-{j}." for j in range(30))
        (docs / f"f{i}.md").write_text(f"# File {i}\n\n{paragraphs}\n")
    chunking = {"chunk_size": 120, "chunk_overlap": 0}
    settings: Settings = make_settings(home=tmp_path / "home", chunking=chunking)
    clients = [Services(settings, embedder=FakeEmbedder()) for _ in range(2)]
    for client in clients:  # opened one after the other: chromadb's start-up is not thread-safe
        assert client.index.list_collections() == []
    start = threading.Barrier(2)
    reports: list[IngestReport] = []
    errors: list[BaseException] = []

    def ingest(services: Services) -> None:
        try:
            start.wait()
            reports.append(services.ingestor.ingest([docs], collection="docs"))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=ingest, args=(s,)) for s in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(reports) == 2
    assert all(r.files_failed == 0 for r in reports)
    # Each file counted once as added (by whichever client got there first) or unchanged.
    assert sum(r.files_ok for r in reports) + sum(r.files_unchanged for r in reports) == 12
    index = clients[0].index
    records = index.documents("docs")
    assert len(records) == 6
    expected = sum(r.chunks for r in records.values())
    assert index.count("docs") == expected  # no duplicate vectors
    assert index.keyword_count("docs") == expected  # no duplicate keyword rows
    chunk_ids = [row[0] for row in index._keyword.rows("docs")]
    assert len(chunk_ids) == len(set(chunk_ids))
