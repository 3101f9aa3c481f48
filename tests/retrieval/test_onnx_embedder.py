"""The ONNX Runtime embedder backends against sentence-transformers' torch, on a tiny BERT
built in code; and a collection refusing questions embedded by a backend whose vectors differ."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from retrieval import embedder as embedder_module
from retrieval.chroma import EmbedderMismatchError, open_chroma_client
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import ChromaIndex
from retrieval.onnx_embedder import openvino_precision
from tests.fakes import TEXTS, FakeEmbedder, make_chunks, record
from tests.tiny import WORDS

pytestmark = pytest.mark.model
SENTENCES = [" ".join(WORDS[i : i + 3 + i % 40]) for i in range(0, 120, 3)]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def embedder(model: Path, backend: str, cache: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(model=str(model), backend=backend, cache_dir=cache,
                                       batch_size=8)  # fmt: skip


@pytest.mark.parametrize("backend", ["onnx", "openvino", "openvino-bf16"])
def test_exported_vectors_equal_torch_vectors(
    tiny_embedder: Path, shared_model_cache: Path, backend: str
) -> None:
    # One export for the three (about 10 s each, in a new process)
    reference = embedder(tiny_embedder, "torch", shared_model_cache).embed_documents(SENTENCES)
    fast = embedder(tiny_embedder, backend, shared_model_cache)
    vectors = fast.embed_documents(SENTENCES)
    assert min(cosine(a, b) for a, b in zip(reference, vectors, strict=True)) >= 0.999
    assert fast.embed_query(SENTENCES[3]) == pytest.approx(vectors[3], abs=1e-5)
    assert fast.max_seq_length == 64 and fast.backend == backend
    assert fast.count_tokens("what is ragqa") == 3


def test_int8_vectors_are_close_and_not_the_same(tiny_embedder: Path, tmp_path: Path) -> None:
    reference = embedder(tiny_embedder, "torch", tmp_path).embed_documents(SENTENCES)
    vectors = embedder(tiny_embedder, "onnx-int8", tmp_path).embed_documents(SENTENCES)
    similarity = [cosine(a, b) for a, b in zip(reference, vectors, strict=True)]
    assert min(similarity) > 0.8 and vectors != reference


def test_exported_once_and_cached(
    tiny_embedder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedder_module, "_models", {})  # not loaded by an earlier test
    first = embedder(tiny_embedder, "onnx", tmp_path).embed_documents(SENTENCES[:3])
    assert len(list((tmp_path / "onnx").glob("*/model.onnx"))) == 1
    monkeypatch.setattr(embedder_module, "_models", {})  # a new process: only the disk cache

    def refuse(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr("retrieval.model_cache.build_apart", refuse)
    again = embedder(tiny_embedder, "onnx", tmp_path).embed_documents(SENTENCES[:3])
    assert min(cosine(a, b) for a, b in zip(first, again, strict=True)) > 0.99999
    assert not list((tmp_path / "onnx").glob(".build-*"))  # no staging left behind


def test_unknown_backend_is_refused(tiny_embedder: Path) -> None:
    with pytest.raises(ValueError, match="onnx-int8"):
        SentenceTransformerEmbedder(model=str(tiny_embedder), backend="tensorrt")


class Shifted(FakeEmbedder):
    """The fake embedder's vectors, bent by `angle` radians: another backend's rounding."""

    def __init__(self, angle: float) -> None:
        super().__init__()
        self.angle = angle

    def embed_documents(self, texts: list[str]) -> list[list[float]]:  # type: ignore[override]
        turned = []
        for v in super().embed_documents(texts):  # toward the all-ones direction, renormalised
            bent = [x * math.cos(self.angle) + math.sin(self.angle) / len(v) ** 0.5 for x in v]
            norm = math.sqrt(sum(x * x for x in bent))
            turned.append([x / norm for x in bent])
        return turned


def test_a_collection_refuses_a_backend_whose_vectors_differ(tmp_path: Path) -> None:
    client = open_chroma_client(path=tmp_path / "chroma")
    chunks = make_chunks(TEXTS)
    built = ChromaIndex(client=client, embedder_name="e", embedder_backend="onnx")
    built.publish("docs", [record("/docs/a.txt")], chunks,
                  FakeEmbedder().embed_documents([c.text for c in chunks]))  # fmt: skip

    def opened(backend: str, angle: float) -> ChromaIndex:
        return ChromaIndex(client=client, embedder_name="e", embedder_backend=backend,
                           embed=Shifted(angle).embed_documents)  # fmt: skip

    assert opened("onnx", 0.5).count("docs") == len(TEXTS)  # same backend: not checked
    assert opened("torch", 0.0).count("docs") == len(TEXTS)  # another, with equal vectors
    with pytest.raises(EmbedderMismatchError, match="RAGQA_EMBEDDER__BACKEND=onnx"):
        opened("onnx-int8", 0.2).count("docs")


class Core:
    """An OpenVINO core reporting `capabilities` for its CPU."""

    def __init__(self, capabilities: list[str]) -> None:
        self.capabilities = capabilities

    def get_property(self, device: str, name: str) -> list[str]:
        assert (device, name) == ("CPU", "OPTIMIZATION_CAPABILITIES")
        return self.capabilities


def test_bfloat16_only_where_the_cpu_computes_it() -> None:
    assert openvino_precision(Core(["BF16", "FP32", "INT8"]), "bf16") == "bf16"
    assert openvino_precision(Core(["FP32", "INT8"]), "bf16") == "f32"  # emulated: slower
    assert openvino_precision(Core(["BF16", "FP32"]), "f32") == "f32"
