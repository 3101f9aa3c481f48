"""Ingest throughput: standalone parse, embed and store costs vs the real, overlapped pipeline."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.formats import measure_formats
from bench.report import Result
from ingest.chunking import split_pages
from ingest.discovery import discover, source_id
from ingest.formats import load
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from retrieval.types import DocumentRecord
from server.settings import Settings
from server.wiring import Services


def _measure(services: Services, files: list[Path], home: Path) -> dict[str, float]:
    """Each stage alone over the same files, then the pipeline; seconds and counts."""
    embedder, size = services.embedder, services.settings.chunking
    started = time.perf_counter()
    parsed = [(path, load(path, source=source_id(path))) for path in files]
    chunks = [
        split_pages(
            pages,
            chunk_size=min(size.chunk_size, embedder.max_seq_length - 2),
            chunk_overlap=size.chunk_overlap,
            version="bench",
            count_tokens=embedder.count_tokens,
        )
        for _, pages in parsed
    ]
    parse_s = time.perf_counter() - started
    texts = [c.text for doc in chunks for c in doc]
    started = time.perf_counter()
    vectors = embedder.embed_documents(texts)
    embed_s = time.perf_counter() - started
    index = ChromaIndex(client=open_chroma_client(path=home / "stages"), embedder_name="bench")
    started = time.perf_counter()
    offset = 0
    for (path, pages), doc in zip(parsed, chunks, strict=True):
        record = DocumentRecord(source_id(path), "bench", len(pages), len(doc), "now")
        index.publish("stages", [record], doc, vectors[offset : offset + len(doc)])
        offset += len(doc)
    store_s = time.perf_counter() - started
    pipeline = Services(
        services.settings.model_copy(update={"home": home / "pipeline"}), embedder=embedder
    ).ingestor
    started = time.perf_counter()
    report = pipeline.ingest(files, collection="pipeline")
    pipeline_s = time.perf_counter() - started
    started = time.perf_counter()
    again = pipeline.ingest(files, collection="pipeline")
    reingest_s = time.perf_counter() - started
    if report.files_failed or again.chunks_added:
        raise RuntimeError(f"unexpected ingest result: {report.to_dict()} / {again.to_dict()}")
    return {
        "files": len(files),
        "pages": sum(len(p) for _, p in parsed),
        "chunks": len(texts),
        "parse_s": parse_s,
        "embed_s": embed_s,
        "store_s": store_s,
        "pipeline_s": pipeline_s,
        "reingest_s": reingest_s,
    }


BACKENDS = ("torch", "openvino", "openvino-bf16", "onnx", "onnx-int8")


def _backends(files: list[Path], tmp: Path) -> dict[str, float]:
    """The embedder backends side by side on the same files: embedding and pipeline
    throughput, their ratio to torch's, and the cosine of each chunk's vector to torch's."""
    metrics: dict[str, float] = {}
    reference: list[list[float]] = []
    for backend in BACKENDS:
        settings = Settings(home=tmp / backend, embedder={"backend": backend}, _env_file=None)
        services = Services(settings)
        services.embedder.embed_documents(["warm up"])  # load (and export) outside the timings
        m = _measure(services, files, tmp / backend)
        texts = [c.text for path in files[:40] for c in _chunks(services, path)]
        vectors = services.embedder.embed_documents(texts)
        reference = reference or vectors
        cosines = [sum(a * b for a, b in zip(u, v, strict=True))
                   for u, v in zip(reference, vectors, strict=True)]  # fmt: skip
        name = f"covid_txt_{backend.replace('-', '_')}"
        metrics |= {f"{name}_embed_chunks_per_s": m["chunks"] / m["embed_s"],
                    f"{name}_chunks_per_s": m["chunks"] / m["pipeline_s"],
                    f"{name}_min_cosine_to_torch": min(cosines),
                    f"{name}_mean_cosine_to_torch": sum(cosines) / len(cosines)}  # fmt: skip
        torch = "covid_txt_torch"
        metrics[f"{name}_embed_speedup"] = (
            metrics[f"{name}_embed_chunks_per_s"] / metrics[f"{torch}_embed_chunks_per_s"]
        )
        metrics[f"{name}_pipeline_speedup"] = (
            metrics[f"{name}_chunks_per_s"] / metrics[f"{torch}_chunks_per_s"]
        )
    return metrics


def _chunks(services: Services, path: Path) -> list[Any]:
    embedder, size = services.embedder, services.settings.chunking
    pages = load(path, source=source_id(path))
    limit = min(size.chunk_size, embedder.max_seq_length - 2)
    return split_pages(pages, chunk_size=limit, chunk_overlap=size.chunk_overlap,
                       version="bench", count_tokens=embedder.count_tokens)  # fmt: skip


def run_ingest(*, data: Path, quick: bool) -> Result:
    """Stage costs and pipeline throughput on covid_qa documents and the Debian FAQ PDF."""
    corpora = {
        "covid_txt": discover([data / "covid_qa" / "documents_txt"])[0][: 15 if quick else None],
        "debian_pdf": [data / "debian_faq" / "debian-faq.en.pdf"],
    }
    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        services = Services(Settings(home=Path(tmp), _env_file=None))
        services.embedder.embed_documents(["warm up"])  # load the model outside the timings
        for name, files in corpora.items():
            m = _measure(services, files, Path(tmp) / name)
            sequential_s = m["parse_s"] + m["embed_s"] + m["store_s"]
            overlapped_s = max(m["parse_s"], m["embed_s"], m["store_s"])
            metrics |= {
                f"{name}_files": m["files"],
                f"{name}_pages": m["pages"],
                f"{name}_chunks": m["chunks"],
                f"{name}_parse_s": m["parse_s"],
                f"{name}_embed_s": m["embed_s"],
                f"{name}_store_s": m["store_s"],
                f"{name}_pipeline_s": m["pipeline_s"],
                f"{name}_pages_per_s": m["pages"] / m["pipeline_s"],
                f"{name}_chunks_per_s": m["chunks"] / m["pipeline_s"],
                # Goal >= 0.8: the pipeline is at least 80% as fast as the stages run alone.
                f"{name}_throughput_ratio": sequential_s / m["pipeline_s"],
                f"{name}_ratio_to_perfect_overlap": overlapped_s / m["pipeline_s"],
                f"{name}_reingest_fraction": m["reingest_s"] / m["pipeline_s"],
            }
        metrics |= _backends(corpora["covid_txt"], Path(tmp) / "backends")
        formats, table = measure_formats(Path(tmp) / "formats", data, quick)
    print("\n### ingest: parse throughput and fidelity per format\n\n" + "\n".join(table))
    metrics |= {f"format_{k}": v for k, v in formats.items()}
    return Result(
        metrics=metrics,
        context={
            "formats_table": table,
            "fidelity": "word overlap with the source text (Markdown page or table cells)",
            "embedder": services.settings.embedder.model,
            "chunk_size_tokens": services.settings.chunking.chunk_size,
            "parse_workers": services.settings.ingest.parse_workers,
            "throughput_ratio": "sum of standalone stage times / pipeline time (goal >= 0.8)",
        },
    )
