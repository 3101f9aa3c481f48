"""Retrieval latency at 100k chunks: real text (covid_qa and the Python docs), copied under
distinct document ids until the collection holds the target; each distinct chunk is embedded
once and its copies share its real vector (never random vectors)."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.report import Result, percentile
from ingest.chunking import split_pages
from ingest.discovery import discover, source_id
from ingest.formats import load
from retrieval.types import Chunk, DocumentRecord
from server.settings import Settings
from server.wiring import Services


def _distinct_chunks(services: Services, data: Path, quick: bool) -> list[list[Chunk]]:
    folders = [data / "covid_qa" / "documents_txt", data / "python311_docs" / "rst_sources"]
    files = [f for folder in folders for f in discover([folder])[0]]
    embedder = services.embedder
    documents = []
    for path in files[: 60 if quick else None]:
        pages = load(path, source=source_id(path))
        documents.append(split_pages(pages, chunk_size=200, chunk_overlap=30, version="v",
                                     count_tokens=embedder.count_tokens))  # fmt: skip
    return [d for d in documents if d]


def _embed_cached(services: Services, texts: list[str]) -> list[list[float]]:
    """Embeddings of `texts`, kept in ~/.cache/ragqa-bench so a rerun skips the ~10 minutes."""
    import numpy as np

    key = hashlib.sha256("\0".join([services.embedder.model_name, *texts]).encode()).hexdigest()
    cache = Path.home() / ".cache" / "ragqa-bench" / f"scale-{key[:16]}.npy"
    if cache.exists():
        return [list(map(float, row)) for row in np.load(cache)]
    vectors = services.embedder.embed_documents(texts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, np.asarray(vectors, dtype=np.float32))
    return vectors


def run_scale(*, data: Path, quick: bool) -> Result:
    """Fill one collection to the target size, then time dense and hybrid searches."""
    target = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        services = Services(Settings(home=Path(tmp), _env_file=None))
        documents = _distinct_chunks(services, data, quick)
        texts = [c.text for doc in documents for c in doc]
        started = time.perf_counter()
        vectors = dict(zip(texts, _embed_cached(services, texts), strict=True))
        embed_s = time.perf_counter() - started
        index, stored, copy = services.index, 0, 0
        started = time.perf_counter()
        batch: list[Chunk] = []
        records: list[DocumentRecord] = []

        def flush() -> None:
            index.publish("scale", records, batch, [vectors[c.text] for c in batch])
            batch.clear()
            records.clear()

        while stored < target:
            for doc in documents:
                source = f"copy{copy}:{doc[0].source}"
                chunks = [
                    replace(
                        c, id=Chunk.make_id(source, "v", c.page, c.start, c.text), source=source
                    )
                    for c in doc
                ][: target - stored]
                batch += chunks
                records.append(DocumentRecord(source, "v", 1, len(chunks), "now"))
                stored += len(chunks)
                if len(batch) >= 5000:
                    flush()
                if stored >= target:
                    break
            copy += 1
        flush()
        fill_s = time.perf_counter() - started
        questions = [
            json.loads(line)["question"]
            for line in (data / "covid_qa" / "covidqa_200423.flat.jsonl").read_text().splitlines()
        ]
        questions = questions[: 50 if quick else 200]  # fmt: skip
        metrics: dict[str, float] = {
            "chunks": index.count("scale"),
            "distinct_chunks": len(texts),
            "embed_s": embed_s,  # near 0 when the embeddings came from the cache
            "fill_s": fill_s,
        }
        for mode in ("dense", "keyword", "hybrid"):
            services.retriever.search(questions[0], collection="scale", mode=mode)  # warm
            latencies = []
            for question in questions:
                begun = time.perf_counter()
                services.retriever.search(question, collection="scale", mode=mode)
                latencies.append((time.perf_counter() - begun) * 1000)
            metrics[f"{mode}_ms_p50"] = percentile(latencies, 50)
            metrics[f"{mode}_ms_p95"] = percentile(latencies, 95)
    return Result(
        metrics=metrics,
        context={"goal": "p95 <= 50 ms dense, <= 100 ms hybrid at 100k chunks, one client",
                 "top_k": services.settings.retrieval.top_k,
                 "candidates": services.settings.retrieval.candidates},
    )  # fmt: skip
