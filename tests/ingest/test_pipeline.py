"""The ingest pipeline over a real embedded Chroma with a fake embedder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ingest.discovery import source_id
from ingest.pipeline import Ingestor
from ingest.report import FileResult
from retrieval.chroma import InvalidCollectionNameError, open_chroma_client
from retrieval.index import ChromaIndex
from tests.fakes import FakeEmbedder


@pytest.fixture
def index(tmp_path: Path) -> ChromaIndex:
    return ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")


def ingestor(index: ChromaIndex, embedder: FakeEmbedder | None = None) -> Ingestor:
    return Ingestor(index=index, embedder=embedder or FakeEmbedder(), chunk_size=40,
                    chunk_overlap=5)  # fmt: skip


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "guide.md").write_text("# Guide\n\n" + "Ragqa answers questions. " * 80)
    (folder / "notes.txt").write_text("Install with make run. " * 60)
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (folder / ".hidden.txt").write_text("secret")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "deep.rst").write_text("Deep\n====\n\nNested folders are read too.")
    (folder / "sub" / "faq.jsonl").write_text('{"question": "Why zebras?", "answer": "Stripes."}\n')
    return folder


def test_folder_ingest_reports_files_chunks_and_catalogue(
    tmp_path: Path, index: ChromaIndex
) -> None:
    docs = write_docs(tmp_path / "docs")
    report = ingestor(index).ingest([docs], collection="docs")
    assert (report.files_ok, report.files_failed, report.files_unchanged) == (4, 0, 0)
    assert [(Path(s.path).name, s.error) for s in report.skipped] == [
        ("clip.mp4", "unsupported file type '.mp4'")
    ]
    assert report.chunks_added == index.count("docs") > 4
    catalogue = index.documents("docs")
    names = ("guide.md", "notes.txt", "sub/deep.rst", "sub/faq.jsonl")
    assert set(catalogue) == {source_id(docs / n) for n in names}
    guide = catalogue[source_id(docs / "guide.md")]
    assert guide.status == "ready" and guide.chunks == len(index.chunk_ids("docs", guide.source))
    hits = index.query("docs", FakeEmbedder().embed_query("Why zebras? Stripes."), 1)
    assert hits[0].chunk.text == "Q: Why zebras?\nA: Stripes."
    assert hits[0].chunk.metadata["row"] == 1


def test_include_and_exclude_globs(tmp_path: Path, index: ChromaIndex) -> None:
    docs = write_docs(tmp_path / "docs")
    report = ingestor(index).ingest([docs], collection="docs", include=["*.md", "sub/*"],
                                    exclude=["*.jsonl"])  # fmt: skip
    assert report.files_ok == 2
    assert set(index.documents("docs")) == {source_id(docs / "guide.md"),
                                            source_id(docs / "sub" / "deep.rst")}  # fmt: skip


def test_reingest_unchanged_adds_nothing_and_embeds_nothing(
    tmp_path: Path, index: ChromaIndex
) -> None:
    docs = write_docs(tmp_path / "docs")
    embedder = FakeEmbedder()
    first = ingestor(index, embedder).ingest([docs], collection="docs")
    calls = len(embedder.calls)
    os.utime(docs / "notes.txt")  # touched, not changed
    second = ingestor(index, embedder).ingest([docs], collection="docs")
    assert second.chunks_added == 0
    assert second.files_unchanged == second.files_ok == first.files_ok
    assert len(embedder.calls) == calls
    assert index.count("docs") == first.chunks_added


def test_changed_file_replaces_exactly_its_chunks(tmp_path: Path, index: ChromaIndex) -> None:
    docs = write_docs(tmp_path / "docs")
    embedder = FakeEmbedder()
    ingestor(index, embedder).ingest([docs], collection="docs")
    notes = docs / "notes.txt"
    others = {
        s: index.chunk_ids("docs", s) for s in index.documents("docs") if s != source_id(notes)
    }
    old = index.chunk_ids("docs", source_id(notes))
    notes.write_text("Completely new content about zebras.")
    embedded_before = sum(embedder.calls)
    report = ingestor(index, embedder).ingest([docs], collection="docs")
    assert (report.chunks_added, report.chunks_removed) == (1, len(old))
    assert report.files_unchanged == report.files_ok - 1
    assert sum(embedder.calls) - embedded_before == 1
    [only] = index.chunk_ids("docs", source_id(notes))
    assert index.query("docs", FakeEmbedder().embed_query("content zebras"), 1)[0].chunk.id == only
    assert {s: index.chunk_ids("docs", s) for s in others} == others


def test_unchanged_chunk_texts_reuse_their_vectors(tmp_path: Path, index: ChromaIndex) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nfirst paragraph stays.\n\n# B\n\nsecond paragraph changes.")
    embedder = FakeEmbedder()
    small = Ingestor(index=index, embedder=embedder, chunk_size=4, chunk_overlap=0)
    small.ingest([doc], collection="docs")
    embedded = sum(embedder.calls)
    doc.write_text("# A\n\nfirst paragraph stays.\n\n# B\n\nsecond paragraph changed!")
    small.ingest([doc], collection="docs")
    assert 0 < sum(embedder.calls) - embedded < embedded


def test_bad_files_are_reported_and_catalogued(tmp_path: Path, index: ChromaIndex) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Good content here.")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 broken")
    (tmp_path / "x.docx").write_bytes(b"PK")
    (tmp_path / "y.pages").write_bytes(b"PK")
    report = ingestor(index).ingest(
        [tmp_path / "bad.pdf", good, tmp_path / "empty.txt", tmp_path / "x.docx",
         tmp_path / "y.pages", tmp_path / "missing.txt"],
        collection="docs",
    )  # fmt: skip
    assert report.files_ok == 1
    assert report.files_failed == 5
    reasons = {Path(e.path).name: e.error for e in report.errors}
    assert "no text" in reasons["empty.txt"]
    assert "PDF" in reasons["bad.pdf"]
    assert "not a Word file" in reasons["x.docx"]
    assert "unsupported" in reasons["y.pages"]
    assert "no such file" in reasons["missing.txt"]
    catalogue = index.documents("docs")
    assert catalogue[source_id(tmp_path / "bad.pdf")].status == "failed"
    assert catalogue[source_id(good)].status == "ready"


def test_a_failing_new_version_keeps_the_old_one(tmp_path: Path, index: ChromaIndex) -> None:
    doc = tmp_path / "doc.jsonl"
    doc.write_text('{"question": "q?", "answer": "kept answer"}\n')
    ingestor(index).ingest([doc], collection="docs")
    doc.write_text("{broken json\n")
    report = ingestor(index).ingest([doc], collection="docs")
    assert report.files_failed == 1
    assert index.documents("docs")[source_id(doc)].status == "ready"
    assert "kept answer" in index.query("docs", FakeEmbedder().embed_query("q"), 1)[0].chunk.text


def test_encrypted_pdf_with_passwords_file(shared_data: Path, index: ChromaIndex) -> None:
    folder = shared_data / "pdf_torture"
    passwords = json.loads((folder / "passwords.json").read_text())
    name = next(k for k in passwords if "user-password" in k)
    without = ingestor(index).ingest([folder / name], collection="docs")
    assert "needs a password" in without.errors[0].error
    with_it = ingestor(index).ingest([folder / name], collection="docs", passwords=passwords)
    assert with_it.files_ok == 1 and with_it.chunks_added > 0


def test_progress_sees_every_file(tmp_path: Path, index: ChromaIndex) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.total = -1
            self.done: list[FileResult] = []

        def start(self, total_files: int) -> None:
            self.total = total_files

        def file_done(self, result: FileResult) -> None:
            self.done.append(result)

    recorder = Recorder()
    docs = write_docs(tmp_path / "docs")
    ingestor(index).ingest([docs], collection="docs", progress=recorder)
    assert recorder.total == 4 == len(recorder.done)
    assert [Path(r.path).name for r in recorder.done] == ["guide.md", "notes.txt", "deep.rst",
                                                         "faq.jsonl"]  # fmt: skip


def test_delete_document_leaves_no_hits(tmp_path: Path, index: ChromaIndex) -> None:
    docs = write_docs(tmp_path / "docs")
    ing = ingestor(index)
    ing.ingest([docs], collection="docs")
    removed = ing.delete("docs", source_id(docs / "notes.txt"))
    assert removed > 0
    hits = index.query("docs", FakeEmbedder().embed_query("Install with make run."), 50)
    assert all("Install with make run" not in h.chunk.text for h in hits)
    assert source_id(docs / "notes.txt") not in index.documents("docs")


def test_chunks_never_exceed_the_embedder_window(tmp_path: Path, index: ChromaIndex) -> None:
    class Narrow(FakeEmbedder):
        @property
        def max_seq_length(self) -> int:
            return 12

    doc = tmp_path / "long.txt"
    doc.write_text("word " * 500)
    Ingestor(index=index, embedder=Narrow(), chunk_size=200, chunk_overlap=20).ingest(
        [doc], collection="docs"
    )
    hits = index.query("docs", FakeEmbedder().embed_query("word"), 100)
    assert max(len(h.chunk.text.split()) for h in hits) <= 10


def test_real_pdf_ingest_keeps_pages(shared_data: Path, index: ChromaIndex) -> None:
    report = ingestor(index).ingest(
        [shared_data / "debian_faq" / "debian-faq.en.pdf"], collection="debian"
    )
    assert report.files_ok == 1
    hits = index.query("debian", FakeEmbedder().embed_query("What is Debian GNU/Linux?"), 5)
    assert all(h.chunk.page is not None and 1 <= h.chunk.page <= 73 for h in hits)


def test_invalid_collection_name_fails_before_any_work(tmp_path: Path, index: ChromaIndex) -> None:
    embedder = FakeEmbedder()
    with pytest.raises(InvalidCollectionNameError):
        ingestor(index, embedder).ingest([write_docs(tmp_path / "docs")], collection="x")
    assert embedder.calls == []


def test_an_unexpected_error_costs_one_file(
    tmp_path: Path, index: ChromaIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.pipeline

    real = ingest.pipeline.split_pages

    def explode(pages, **kwargs):  # type: ignore[no-untyped-def]
        if pages[0].source.endswith("bad.txt"):
            raise RuntimeError("library bug")
        return real(pages, **kwargs)

    monkeypatch.setattr(ingest.pipeline, "split_pages", explode)
    (tmp_path / "bad.txt").write_text("boom")
    (tmp_path / "good.txt").write_text("fine")
    report = ingestor(index).ingest([tmp_path], collection="docs")
    assert report.files_ok == 1
    assert "library bug" in report.errors[0].error


def test_leftovers_of_an_interrupted_run_are_swept(tmp_path: Path, index: ChromaIndex) -> None:
    docs = write_docs(tmp_path / "docs")
    ingestor(index).ingest([docs], collection="docs")
    # As if a run had stored a new version and died before switching to it.
    from tests.fakes import make_chunks

    orphans = make_chunks(["half written"], source_id(docs / "notes.txt"), version="dead")
    index.upsert("docs", orphans, FakeEmbedder().embed_documents(["half written"]))
    report = ingestor(index).ingest([docs], collection="docs")
    assert report.files_unchanged == report.files_ok
    expected = sum(r.chunks for r in index.documents("docs").values())
    assert index.count("docs") == expected
