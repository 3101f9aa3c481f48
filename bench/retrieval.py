"""Document-QA retrieval: hit@k and MRR of keyword, dense and hybrid on covid_qa and the Python FAQ.

covid_qa: the 98 articles go through the real ingest pipeline; a hit is a retrieved chunk that
covers the gold answer's character offset. Python FAQ: the 497 reST sources; a hit is a chunk
from the gold file. Modes run side by side on the same index, with retrieval latency.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.report import Result, percentile
from ingest.cleaning import normalize_text
from ingest.discovery import source_id
from ingest.loaders import decode
from retrieval.types import ScoredChunk, SearchMode
from server.settings import Settings
from server.wiring import Services

MODES = (SearchMode.KEYWORD, SearchMode.DENSE, SearchMode.HYBRID)
Judge = Callable[[ScoredChunk], bool]


def _covid(data: Path, quick: bool) -> tuple[Path, list[tuple[str, Judge]]]:
    folder = data / "covid_qa" / "documents_txt"
    rows = [json.loads(line) for line in
            (data / "covid_qa" / "covidqa_200423.flat.jsonl").read_text().splitlines()]  # fmt: skip
    if quick:
        rows = random.Random(13).sample(rows, 200)
    texts: dict[str, str] = {}
    items: list[tuple[str, Judge]] = []
    for row in rows:
        path = data / "covid_qa" / row["document_file"]
        raw = texts.setdefault(str(path), decode(path.read_bytes()))
        # Chunk offsets index the normalised text; map the gold offset the same way.
        offset = len(normalize_text(raw[: row["answer_start"]]))
        source = source_id(path)

        def judge(hit: ScoredChunk, source: str = source, offset: int = offset) -> bool:
            c = hit.chunk
            return c.source == source and c.start <= offset < c.start + len(c.text)

        items.append((row["question"], judge))
    return folder, items


def _python_faq(data: Path, quick: bool) -> tuple[Path, list[tuple[str, Judge]]]:
    folder = data / "python311_docs" / "rst_sources"
    rows = [json.loads(line) for line in
            (data / "python311_docs" / "python_faq_qa.jsonl").read_text().splitlines()]  # fmt: skip
    if quick:
        rows = rows[:60]
    items: list[tuple[str, Judge]] = []
    for row in rows:
        source = source_id(folder / f"{row['file']}.txt")

        def judge(hit: ScoredChunk, source: str = source) -> bool:
            return hit.chunk.source == source

        items.append((row["question"], judge))
    return folder, items


def _score(
    services: Services, collection: str, items: list[tuple[str, Judge]], mode: str
) -> dict[str, float]:
    ranks, latencies = [], []
    for question, judge in items:
        started = time.perf_counter()
        hits = services.retriever.search(question, collection=collection, k=10, mode=mode)
        latencies.append((time.perf_counter() - started) * 1000)
        ranks.append(next((i for i, h in enumerate(hits, start=1) if judge(h)), None))
    n = len(items)
    return {
        "hit_at_1": sum(r == 1 for r in ranks) / n,
        "hit_at_5": sum(r is not None and r <= 5 for r in ranks) / n,
        "hit_at_10": sum(r is not None for r in ranks) / n,
        "mrr_at_10": sum(1 / r for r in ranks if r) / n,
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
    }


def run_retrieval(
    *, data: Path, quick: bool, sets: Sequence[str] = ("covid_qa", "python_faq")
) -> Result:
    """All three modes on both sets (or those `--set` names), one index per set."""
    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        services = Services(Settings(home=Path(tmp), _env_file=None))
        for name, build in (("covid_qa", _covid), ("python_faq", _python_faq)):
            if name not in sets:
                continue
            folder, items = build(data, quick)
            started = time.perf_counter()
            report = services.ingestor.ingest([folder], collection=name)
            metrics[f"{name}_ingest_s"] = time.perf_counter() - started
            metrics[f"{name}_chunks"] = report.chunks_added
            metrics[f"{name}_questions"] = len(items)
            for mode in MODES:
                for key, value in _score(services, name, items, mode).items():
                    metrics[f"{name}_{mode}_{key}"] = value
            for key in ("hit_at_5", "mrr_at_10"):
                metrics[f"{name}_hybrid_minus_dense_{key}"] = (
                    metrics[f"{name}_hybrid_{key}"] - metrics[f"{name}_dense_{key}"]
                )
    settings = services.settings
    return Result(
        metrics=metrics,
        context={
            "embedder": settings.embedder.model,
            "embedder_backend": settings.embedder.backend,
            "chunk_size_tokens": settings.chunking.chunk_size,
            "chunk_overlap_tokens": settings.chunking.chunk_overlap,
            "candidates": settings.retrieval.candidates,
            "fusion": settings.retrieval.fusion,
            "keyword_weight": settings.retrieval.keyword_weight,
            "rrf_k": settings.retrieval.rrf_k,
            "goal": "covid_qa hybrid hit@5 >= dense + 0.02; hybrid never worse than the better "
            "of dense and keyword by more than 0.01",
        },
    )
