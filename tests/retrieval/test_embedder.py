"""SentenceTransformerEmbedder on a tiny BERT built in code."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from retrieval.embedder import EmbedderLoadError, SentenceTransformerEmbedder
from retrieval.model_thread import ModelThread

pytestmark = pytest.mark.model


def test_vectors_are_normalised_and_consistent(tiny_embedder: Path) -> None:
    embedder = SentenceTransformerEmbedder(
        model=str(tiny_embedder), model_name="tiny", batch_size=2
    )
    docs = embedder.embed_documents(["what is ragqa", "debian linux", "the answer", "a page"])
    assert len(docs) == 4
    assert {len(v) for v in docs} == {32}
    for v in docs:
        assert math.sqrt(sum(x * x for x in v)) == pytest.approx(1.0, abs=1e-5)
    assert embedder.embed_query("debian linux") == pytest.approx(docs[1], abs=1e-5)
    assert embedder.model_name == "tiny"
    assert embedder.max_seq_length == 64
    assert embedder.embed_documents([]) == []


def test_missing_model_says_which_setting_to_change(tmp_path: Path) -> None:
    embedder = SentenceTransformerEmbedder(model=str(tmp_path / "nothing-here"))
    with pytest.raises(EmbedderLoadError, match="RAGQA_EMBEDDER__MODEL"):
        embedder.embed_query("x")


def test_embedding_runs_on_the_model_thread(tiny_embedder: Path) -> None:
    model_thread = ModelThread(name="model")
    embedder = SentenceTransformerEmbedder(model=str(tiny_embedder), model_thread=model_thread)
    plain = SentenceTransformerEmbedder(model=str(tiny_embedder))
    names: list[str] = []
    original = model_thread.run

    def spying(fn, **kwargs):  # type: ignore[no-untyped-def]
        return original(lambda: (names.append(threading.current_thread().name), fn())[1], **kwargs)

    model_thread.run = spying  # type: ignore[method-assign]
    vectors = embedder.embed_documents(["a cat", "a dog"])
    for got, want in zip(vectors, plain.embed_documents(["a cat", "a dog"]), strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    assert names and all(n.startswith("model") for n in names)
    model_thread.shutdown()
