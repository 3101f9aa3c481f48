"""The ingest pipeline over a real embedded Chroma with a fake embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.pipeline import Ingestor, source_id
from retrieval.index import ChromaIndex, open_chroma_client
from tests.fakes import FakeEmbedder


@pytest.fixture
def index(tmp_path: Path) -> ChromaIndex:
    return ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "guide.md").write_text("# Guide\n\n" + "Ragqa answers questions. " * 80)
    (folder / "notes.txt").write_text("Install with make run. " * 60)
    (folder / "image.png").write_bytes(b"\x89PNG")
    (folder / ".hidden.txt").write_text("secret")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "deep.rst").write_text("Deep\n====\n\nNested folders are read too.")
    return folder


def test_folder_ingest_reports_files_and_chunks(tmp_path: Path, index: ChromaIndex) -> None:
    docs = write_docs(tmp_path / "docs")
    report = Ingestor(
        index=index, embedder=FakeEmbedder(), chunk_size=300, chunk_overlap=30
    ).ingest([docs], collection="docs")
    assert report.files_ok == 3
    assert report.files_failed == 0
    assert report.chunks_added == index.count("docs") > 3
    sources = {c for c in [source_id(docs / "guide.md"), source_id(docs / "sub" / "deep.rst")]}
    for source in sources:
        assert index.ids_for_source("docs", source)


def test_reingest_adds_nothing_and_embeds_nothing(tmp_path: Path, index: ChromaIndex) -> None:
    docs = write_docs(tmp_path / "docs")
    embedder = FakeEmbedder()
    ingestor = Ingestor(index=index, embedder=embedder, chunk_size=300, chunk_overlap=30)
    first = ingestor.ingest([docs], collection="docs")
    calls = len(embedder.calls)
    second = ingestor.ingest([docs], collection="docs")
    assert second.chunks_added == 0
    assert second.files_ok == first.files_ok
    assert len(embedder.calls) == calls
    assert index.count("docs") == first.chunks_added


def test_changed_file_replaces_its_chunks(tmp_path: Path, index: ChromaIndex) -> None:
    docs = write_docs(tmp_path / "docs")
    ingestor = Ingestor(index=index, embedder=FakeEmbedder(), chunk_size=300, chunk_overlap=30)
    ingestor.ingest([docs], collection="docs")
    notes = docs / "notes.txt"
    before_other = index.ids_for_source("docs", source_id(docs / "guide.md"))
    notes.write_text("Completely new content about zebras.")
    report = ingestor.ingest([notes], collection="docs")
    assert report.chunks_added == 1
    assert report.chunks_removed > 0
    [only] = index.ids_for_source("docs", source_id(notes))
    hits = index.query("docs", FakeEmbedder().embed_query("zebras"), 1)
    assert hits[0].chunk.id == only
    assert index.ids_for_source("docs", source_id(docs / "guide.md")) == before_other


def test_bad_files_are_reported_not_fatal(tmp_path: Path, index: ChromaIndex) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Good content here.")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 broken")
    (tmp_path / "x.docx").write_bytes(b"PK")
    report = Ingestor(index=index, embedder=FakeEmbedder()).ingest(
        [
            tmp_path / "bad.pdf",
            good,
            tmp_path / "empty.txt",
            tmp_path / "x.docx",
            tmp_path / "missing.txt",
        ],
        collection="docs",
    )
    assert report.files_ok == 1
    assert report.files_failed == 4
    reasons = {Path(e.path).name: e.error for e in report.errors}
    assert "no text" in reasons["empty.txt"]
    assert "PDF" in reasons["bad.pdf"]
    assert "unsupported" in reasons["x.docx"]
    assert "no such file" in reasons["missing.txt"]
    assert report.to_dict()["errors"][0].keys() == {"path", "error"}


def test_real_pdf_ingest_keeps_pages(shared_data: Path, index: ChromaIndex) -> None:
    report = Ingestor(index=index, embedder=FakeEmbedder()).ingest(
        [shared_data / "debian_faq" / "debian-faq.en.pdf"], collection="debian"
    )
    assert report.files_ok == 1
    hits = index.query("debian", FakeEmbedder().embed_query("What is Debian GNU/Linux?"), 5)
    assert all(h.chunk.page is not None and 1 <= h.chunk.page <= 73 for h in hits)


def test_invalid_collection_name_fails_before_any_work(tmp_path: Path, index: ChromaIndex) -> None:
    from retrieval.index import InvalidCollectionNameError

    embedder = FakeEmbedder()
    docs = write_docs(tmp_path / "docs")
    with pytest.raises(InvalidCollectionNameError):
        Ingestor(index=index, embedder=embedder).ingest([docs], collection="x")
    assert embedder.calls == []
