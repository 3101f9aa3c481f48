"""ChromaIndex on a real embedded Chroma store."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.catalog import DocumentNotFoundError
from retrieval.chroma import (
    CollectionNotFoundError,
    EmbedderMismatchError,
    InvalidCollectionNameError,
    open_chroma_client,
    validate_collection_name,
)
from retrieval.index import ChromaIndex
from retrieval.keyword import KeywordIndex
from retrieval.types import Chunk, DocumentRecord
from tests.fakes import TEXTS, FakeEmbedder, make_chunks, record, store


@pytest.fixture
def index(tmp_path: Path) -> ChromaIndex:
    return ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")


def test_upsert_then_query_returns_chunks_with_metadata(index: ChromaIndex) -> None:
    chunks = make_chunks(TEXTS)
    store(index, "docs", chunks)
    assert index.count("docs") == len(TEXTS)
    hits = index.query("docs", FakeEmbedder().embed_query("how are packages installed with apt"), 3)
    assert hits[0].chunk == chunks[2]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_top_k_equals_brute_force_search(index: ChromaIndex) -> None:
    embedder = FakeEmbedder()
    vectors = embedder.embed_documents(TEXTS)
    chunks = make_chunks(TEXTS)
    store(index, "docs", chunks)
    for query in ["vector search", "operating system volunteers", "production web server"]:
        q = embedder.embed_query(query)
        cosine = {
            c.id: sum(a * b for a, b in zip(q, v, strict=True))
            for c, v in zip(chunks, vectors, strict=True)
        }
        exact = sorted(cosine.values(), reverse=True)[:4]
        hits = index.query("docs", q, 4)
        # Same scores as exhaustive search (ties may come in any order), each one truthful.
        assert [h.score for h in hits] == pytest.approx(exact, abs=1e-4)
        for hit in hits:
            assert hit.score == pytest.approx(cosine[hit.chunk.id], abs=1e-4)


def test_upsert_is_idempotent_and_batched(
    index: ChromaIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = make_chunks(TEXTS)
    monkeypatch.setattr(index._store.client, "get_max_batch_size", lambda: 3)
    store(index, "docs", chunks)
    store(index, "docs", chunks)
    assert index.count("docs") == len(TEXTS)
    assert index.chunk_ids("docs", "/docs/a.txt") == {c.id for c in chunks}
    assert index.delete_chunks("docs", "/docs/a.txt") == len(TEXTS)


def test_only_the_catalogued_version_is_visible(index: ChromaIndex) -> None:
    old = make_chunks(TEXTS[:4], "/a.txt", version="old")
    new = make_chunks([t.upper() for t in TEXTS[:4]], "/a.txt", version="new")
    store(index, "docs", old)
    query = FakeEmbedder().embed_query(TEXTS[0])
    # The new version is stored but not yet published: searches still see the old one only.
    index.upsert("docs", new, FakeEmbedder().embed_documents([c.text for c in new]))
    assert {h.chunk.version for h in index.query("docs", query, 8)} == {"old"}
    # One catalogue update switches every chunk at once.
    index.put_document("docs", record("/a.txt", "new", 4))
    hits = index.query("docs", query, 8)
    assert {h.chunk.version for h in hits} == {"new"}
    assert len(hits) == 4
    assert index.delete_chunks("docs", "/a.txt", keep_version="new") == 4
    assert index.chunk_ids("docs", "/a.txt") == {c.id for c in new}


def test_hidden_versions_never_crowd_out_visible_hits(index: ChromaIndex) -> None:
    # Many unpublished chunks nearer the query than the published ones.
    hidden = make_chunks([f"apt packages install {i}" for i in range(40)], "/h.txt", "x")
    index.upsert("docs", hidden, FakeEmbedder().embed_documents([c.text for c in hidden]))
    store(index, "docs", make_chunks(TEXTS))
    hits = index.query("docs", FakeEmbedder().embed_query("apt packages install"), 3)
    assert len(hits) == 3
    assert {h.chunk.source for h in hits} == {"/docs/a.txt"}


def test_catalogue_lists_and_removes_documents(index: ChromaIndex) -> None:
    store(index, "docs", make_chunks(TEXTS[:4], "/a.txt") + make_chunks(TEXTS[4:], "/b.txt"))
    failed = DocumentRecord("/c.pdf", "h", 0, 0, "2026-01-01", status="failed", error="bad")
    index.put_document("docs", failed)
    docs = index.documents("docs")
    assert list(docs) == ["/a.txt", "/b.txt", "/c.pdf"]
    assert docs["/c.pdf"].error == "bad"
    assert index.remove_document("docs", "/a.txt") == 4
    assert list(index.documents("docs")) == ["/b.txt", "/c.pdf"]
    hits = index.query("docs", FakeEmbedder().embed_query(TEXTS[0]), 8)
    assert {h.chunk.source for h in hits} == {"/b.txt"}
    with pytest.raises(DocumentNotFoundError, match="ragqa documents"):
        index.remove_document("docs", "/a.txt")


def test_delete_collection_removes_everything(index: ChromaIndex) -> None:
    store(index, "docs", make_chunks(TEXTS))
    store(index, "other", make_chunks(TEXTS))
    index.delete_collection("docs")
    assert index.list_collections() == ["other"]
    assert index.documents("docs") == {}
    with pytest.raises(CollectionNotFoundError):
        index.query("docs", [1.0] * 64, 3)
    with pytest.raises(CollectionNotFoundError):
        index.delete_collection("docs")


def test_missing_and_empty_collections_are_clear_errors(index: ChromaIndex) -> None:
    with pytest.raises(CollectionNotFoundError, match="ragqa ingest PATH --collection nothing"):
        index.query("nothing", [1.0] * 64, 3)
    store(index, "docs", make_chunks(TEXTS[:1]))
    index.remove_document("docs", "/docs/a.txt")
    with pytest.raises(CollectionNotFoundError, match="is empty") as raised:
        index.query("docs", [1.0] * 64, 3)
    assert raised.value.empty


def test_embedder_mismatch_is_refused(tmp_path: Path) -> None:
    client = open_chroma_client(path=tmp_path / "chroma")
    store(ChromaIndex(client=client, embedder_name="model-a"), "docs", make_chunks(TEXTS[:1]))
    with pytest.raises(EmbedderMismatchError, match="model-a"):
        ChromaIndex(client=client, embedder_name="model-b").count("docs")


def test_store_persists_across_clients(tmp_path: Path) -> None:
    store(ChromaIndex(client=open_chroma_client(path=tmp_path / "c"), embedder_name="e"),
          "docs", make_chunks(TEXTS))  # fmt: skip
    reopened = ChromaIndex(client=open_chroma_client(path=tmp_path / "c"), embedder_name="e")
    assert reopened.list_collections() == ["docs"]
    assert reopened.count("docs") == len(TEXTS)
    assert list(reopened.documents("docs")) == ["/docs/a.txt"]


@pytest.mark.parametrize(
    "name", ["ab", "-docs", "docs-", "a b c", "dö-cs", "a..b", "", "x__catalog", "a" * 510]
)
def test_invalid_collection_names_explain_the_rule(name: str) -> None:
    with pytest.raises(InvalidCollectionNameError, match="Invalid collection name"):
        validate_collection_name(name)


def test_page_and_metadata_round_trip(index: ChromaIndex) -> None:
    chunk = Chunk(id="x" * 32, text="page text", source="/a.pdf", page=7, start=12, version="v",
                  metadata={"filename": "a.pdf", "section": "Intro > Scope"})  # fmt: skip
    store(index, "docs", [chunk])
    [hit] = index.query("docs", FakeEmbedder().embed_query("page text"), 1)
    assert hit.chunk == chunk


def test_vectors_for_source_returns_stored_vectors(index: ChromaIndex) -> None:
    chunks = make_chunks(TEXTS[:3])
    store(index, "docs", chunks)
    vectors = index.vectors_for_source("docs", "/docs/a.txt")
    assert set(vectors) == set(TEXTS[:3])
    assert vectors[TEXTS[0]] == pytest.approx(FakeEmbedder().embed_query(TEXTS[0]), abs=1e-6)
    assert index.vectors_for_source("nothing", "/x") == {}


def test_sweep_removes_chunks_of_no_current_version(index: ChromaIndex) -> None:
    store(index, "docs", make_chunks(TEXTS[:4], "/a.txt", version="v2"))
    leftovers = make_chunks(TEXTS[:2], "/a.txt", version="v1") + make_chunks(TEXTS[4:], "/gone.txt")
    index.upsert("docs", leftovers, FakeEmbedder().embed_documents([c.text for c in leftovers]))
    assert index.count("docs") == 4 + len(leftovers)
    assert index.sweep("docs") == len(leftovers)
    assert index.count("docs") == 4
    assert index.chunk_ids("docs", "/a.txt") == index.chunk_ids("docs", "/a.txt", "v2")


def test_a_lost_keyword_index_is_rebuilt_from_the_stored_chunks(tmp_path: Path) -> None:
    client = open_chroma_client(path=tmp_path / "c")
    chunks = make_chunks(TEXTS)
    store(ChromaIndex(client=client, embedder_name="e", keyword=KeywordIndex(path=tmp_path / "k")),
          "docs", chunks)  # fmt: skip
    # A new keyword file (an upgrade, a deleted file, another server sharing the Chroma store).
    fresh = ChromaIndex(client=client, embedder_name="e", keyword=KeywordIndex(path=tmp_path / "n"))
    [(hit, _)] = fresh.keyword_query("docs", "dpkg", 1)
    assert hit == chunks[2]
    assert fresh.keyword_count("docs") == len(TEXTS)


def test_sweep_brings_a_partial_keyword_index_back_in_step(tmp_path: Path) -> None:
    keyword = KeywordIndex(path=tmp_path / "k")
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "c"), embedder_name="e",
                        keyword=keyword)  # fmt: skip
    chunks = make_chunks(TEXTS)
    store(index, "docs", chunks)
    keyword.delete("docs", [c.id for c in chunks[:3]])  # as if a crash lost these rows
    assert index.sweep("docs") == 0
    assert index.keyword_count("docs") == len(TEXTS)
    [(hit, _)] = index.keyword_query("docs", "volunteers", 1)
    assert hit == chunks[0]


def test_publish_switches_each_document_and_removes_its_old_version(index: ChromaIndex) -> None:
    old = make_chunks(TEXTS[:4], "/a.txt", "old") + make_chunks(TEXTS[4:], "/b.txt", "old")
    store(index, "docs", old)
    new = make_chunks([t.upper() for t in TEXTS[:4]], "/a.txt", "new")
    vectors = FakeEmbedder().embed_documents([c.text for c in new])
    assert index.publish("docs", [record("/a.txt", "new", 4)], new, vectors) == 4
    assert index.chunk_ids("docs", "/a.txt") == {c.id for c in new}
    assert len(index.chunk_ids("docs", "/b.txt", "old")) == len(TEXTS) - 4  # untouched
    assert index.documents("docs")["/a.txt"].content_hash == "new"
    assert index.keyword_count("docs") == index.count("docs") == len(TEXTS)
