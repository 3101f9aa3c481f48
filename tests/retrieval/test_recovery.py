"""A collection whose HNSW files an interrupted write damaged is rebuilt from its stored chunks."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from retrieval import recovery
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from retrieval.keyword import KeywordIndex
from retrieval.recovery import DamagedIndexError
from retrieval.types import Chunk, DocumentRecord
from tests.fakes import FakeEmbedder, make_chunks

WORDS = ["apt", "kernel", "memory", "flask", "vector", "page", "chunk", "query", "index",
         "server", "model", "token"]  # fmt: skip
SOURCES = [f"/docs/file{d:02d}.txt" for d in range(26)]


def texts_of(source: int, version: str) -> list[str]:
    return [
        f"{version} part {i} of file {source}: {WORDS[(source * 7 + i) % 12]} "
        f"{WORDS[(source + i * 5) % 12]} {WORDS[i % 12]}"
        for i in range(50)
    ]


def chunks_of(source: int, version: str) -> list[Chunk]:
    return make_chunks(texts_of(source, version), SOURCES[source], version)


def publish(index: ChromaIndex, chunks: list[Chunk]) -> None:
    """Store one document's chunks and make them its visible version, as ingest does."""
    record = DocumentRecord(chunks[0].source, chunks[0].version, pages=1, chunks=len(chunks),
                            ingested_at="2026-12-01")  # fmt: skip
    index.publish(
        "docs", [record], chunks, FakeEmbedder().embed_documents([c.text for c in chunks])
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 1,300 chunks: Chroma has saved its HNSW files (every 1,000 records) and
    holds the replacement of two documents in its log, past the last save."""
    root = tmp_path_factory.mktemp("built") / "chroma"
    client = open_chroma_client(path=root)
    index = ChromaIndex(client=client, embedder_name="fake")
    for source in range(len(SOURCES)):
        publish(index, chunks_of(source, "v1"))
    for source in (3, 11):
        publish(index, chunks_of(source, "v2"))
    client.close()
    return root


@pytest.fixture
def damaged(built: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of the store whose chunk collection's HNSW files are damaged as a kill can."""
    root = tmp_path / "chroma"
    shutil.copytree(built, root)
    client = open_chroma_client(path=root)
    folder = recovery.vector_folder(root, str(client.get_collection("docs").id))
    client.close()
    assert folder is not None and (folder / "header.bin").is_file()
    how = getattr(request, "param", "data")
    if how == "data":  # half written: "Failed to apply logs to the hnsw segment writer"
        data = folder / "data_level0.bin"
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif how == "header":  # zeroed: "Error loading hnsw index"
        (folder / "header.bin").write_bytes(bytes(100))
    else:  # the id map half written: "Error deserializing pickle file"
        pickle = folder / "index_metadata.pickle"
        pickle.write_bytes(pickle.read_bytes()[:1000])
    return root


def current_chunks() -> list[Chunk]:
    return [c for s in range(len(SOURCES)) for c in chunks_of(s, "v2" if s in (3, 11) else "v1")]


def open_index(root: Path, embed: object = None) -> ChromaIndex:
    return ChromaIndex(client=open_chroma_client(path=root), embedder_name="fake",
                       keyword=KeywordIndex(path=root.parent / "keyword.sqlite"),
                       embed=embed)  # type: ignore[arg-type]  # fmt: skip


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


@pytest.mark.parametrize("damaged", ["data", "header", "pickle"], indirect=True)
def test_a_damaged_collection_is_rebuilt_when_the_store_opens(damaged: Path) -> None:
    embedder = FakeEmbedder()
    index = open_index(damaged, embedder.embed_documents)
    assert index.check() == ["docs"]
    assert not (damaged / recovery.REPAIR_FOLDER).exists()  # marker and damaged files gone
    expected = current_chunks()
    assert index.count("docs") == len(expected)
    documents = index.documents("docs")
    assert len(documents) == len(SOURCES)
    assert all(d.status == "ready" for d in documents.values())
    # Every vector is back, and it is the embedder's vector of the chunk's text.
    stored = index.vectors("docs", [c.id for c in expected])
    assert len(stored) == len(expected)
    wanted = embedder.embed_documents([c.text for c in expected])
    assert all(cosine(stored[c.id], v) > 0.9999 for c, v in zip(expected, wanted, strict=True))
    # Search works again: top-k equals brute force over the visible chunks.
    question = embedder.embed_query("kernel memory of file 11")
    ranked = sorted(expected, key=lambda c: -cosine(question, wanted[expected.index(c)]))
    hits = index.query("docs", question, 5)
    assert [round(h.score, 5) for h in hits] == [
        round(cosine(question, wanted[expected.index(c)]), 5) for c in ranked[:5]
    ]
    # Reopened, the store is healthy: nothing left to repair.
    assert open_index(damaged, embedder.embed_documents).check() == []


def test_without_an_embedder_the_damage_is_reported_and_nothing_changes(damaged: Path) -> None:
    index = open_index(damaged)
    with pytest.raises(DamagedIndexError, match=r"collection 'docs' is damaged.*ragqa serve"):
        index.count("docs")
    assert index.check() == []  # logged, skipped: the other collections keep working
    assert not (damaged / recovery.REPAIR_FOLDER).exists()


def test_an_interrupted_repair_resumes_on_the_next_open(damaged: Path) -> None:
    def power_cut(texts: Sequence[str]) -> list[list[float]]:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        open_index(damaged, power_cut).count("docs")
    # The damaged files are set aside and the repair is marked as started...
    assert recovery.repair_pending(damaged, "docs")
    # ...so the next open finishes it, although the store now reads without an error.
    index = open_index(damaged, FakeEmbedder().embed_documents)
    assert index.check() == ["docs"]
    assert not recovery.repair_pending(damaged, "docs")
    expected = current_chunks()
    assert len(index.vectors("docs", [c.id for c in expected])) == len(expected)
