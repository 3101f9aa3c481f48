"""Identity and updates on a real corpus: the Python 3.11 reST sources (497 files)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.discovery import source_id
from ingest.pipeline import Ingestor
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from tests.fakes import FakeEmbedder

pytestmark = pytest.mark.slow


def test_reingest_touch_change_and_delete(shared_data: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "rst_sources"
    shutil.copytree(shared_data / "python311_docs" / "rst_sources", corpus)
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    embedder = FakeEmbedder()
    ingestor = Ingestor(index=index, embedder=embedder)

    first = ingestor.ingest([corpus], collection="python")
    assert first.files_ok == 497 and first.files_failed == 0
    total = index.count("python")
    assert total == first.chunks_added

    second = ingestor.ingest([corpus], collection="python")
    assert second.chunks_added == 0 and second.files_unchanged == 497
    assert index.count("python") == total

    # Change one file: exactly its chunks are replaced, every other document is untouched.
    target = corpus / "tutorial" / "classes.rst.txt"
    before = {s: index.chunk_ids("python", s) for s in index.documents("python")}
    target.write_text(target.read_text() + "\n\nA zanzibarquux closes the tutorial.\n")
    third = ingestor.ingest([corpus], collection="python")
    after = {s: index.chunk_ids("python", s) for s in index.documents("python")}
    changed = [s for s in before if before[s] != after[s]]
    assert changed == [source_id(target)]
    assert third.chunks_removed == len(before[source_id(target)])
    assert third.chunks_added == len(after[source_id(target)])
    assert index.count("python") == total - third.chunks_removed + third.chunks_added

    # Delete it: nothing of it can be retrieved, not even its unique phrase.
    ingestor.delete("python", source_id(target))
    hits = index.query("python", embedder.embed_query("zanzibarquux"), index.count("python"))
    assert not any("zanzibarquux" in h.chunk.text for h in hits)
    assert not any(h.chunk.source == source_id(target) for h in hits)
    assert index.count("python") == total - third.chunks_removed
