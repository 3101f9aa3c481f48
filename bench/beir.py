"""Reproduction gate: SciFact nDCG@10 with the packaged all-MiniLM-L6-v2 vs the MTEB score.

BEIR/MTEB protocol: the 300 SciFact dev ("validation") claims are the queries, each claim's cited
abstracts are its relevant documents (339 pairs), documents are "title abstract" whole (the
model truncates at its 256-token window), cosine similarity. Also reported: the stricter variant
that counts only abstracts given as evidence (188 claims), and the same queries through ragqa's
real index (Chroma HNSW) as a ratio to exact search.
"""

from __future__ import annotations

import csv
import io
import math
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bench.report import Result
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from retrieval.types import Chunk, DocumentRecord
from server.settings import Settings
from server.wiring import Services

PUBLISHED_NDCG10 = 0.645  # MTEB leaderboard, sentence-transformers/all-MiniLM-L6-v2, SciFact
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def _rows(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.TextIOWrapper(archive.open(name), encoding="utf-8")))


def _sentences(field: str) -> str:
    """The abstract is stored as the repr of an array of sentence strings."""
    return " ".join(a or b for a, b in _QUOTED.findall(field)).replace("\\'", "'")


def load_scifact(data: Path) -> tuple[dict[str, str], dict[str, set[str]], dict[str, set[str]],
                                      dict[str, str]]:  # fmt: skip
    """(corpus id -> text, cited qrels, evidence qrels, query id -> claim)."""
    with zipfile.ZipFile(data / "scifact_hf_csv" / "scifact.zip") as archive:
        corpus = {
            r["doc_id"]: f"{r['title']} {_sentences(r['abstract'])}".strip()
            for r in _rows(archive, "corpus_train.csv")
        }
        claims = _rows(archive, "claims_validation.csv")
    cited: dict[str, set[str]] = {}
    evidence: dict[str, set[str]] = {}
    queries: dict[str, str] = {}
    for row in claims:
        queries[row["id"]] = row["claim"]
        cited.setdefault(row["id"], set()).update(re.findall(r"\d+", row["cited_doc_ids"]))
        if row["evidence_doc_id"]:
            evidence.setdefault(row["id"], set()).add(row["evidence_doc_id"])
    return corpus, cited, evidence, queries


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    """Binary-relevance nDCG@10, as pytrec_eval computes it for BEIR."""
    dcg = sum(1 / math.log2(i + 2) for i, doc in enumerate(ranked[:10]) if doc in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal if ideal else 0.0


def _mean(qrels: dict[str, set[str]], ranking: dict[str, list[str]]) -> float:
    return float(np.mean([ndcg_at_10(ranking[q], rel) for q, rel in qrels.items()]))


def run_beir(*, data: Path, quick: bool) -> Result:
    """Exact and HNSW nDCG@10 on SciFact; --quick uses the first 60 queries."""
    corpus, cited, evidence, queries = load_scifact(data)
    if quick:
        keep = sorted(cited)[:60]
        cited = {q: cited[q] for q in keep}
        evidence = {q: d for q, d in evidence.items() if q in cited}
    ids = list(corpus)
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        services = Services(Settings(home=Path(tmp), _env_file=None))
        embedder = services.embedder
        doc_vectors = np.asarray(embedder.embed_documents([corpus[i] for i in ids]))
        query_ids = sorted(cited)
        query_vectors = np.asarray(embedder.embed_documents([queries[q] for q in query_ids]))
        scores = query_vectors @ doc_vectors.T
        exact = {q: [ids[j] for j in np.argsort(-scores[n])[:10]] for n, q in enumerate(query_ids)}
        index = ChromaIndex(client=open_chroma_client(path=Path(tmp) / "chroma"),
                            embedder_name="bench")  # fmt: skip
        chunks = [Chunk(id=i, text=corpus[i], source=i, version="v") for i in ids]
        records = [DocumentRecord(i, "v", 1, 1, "now") for i in ids]
        index.publish("scifact", records, chunks, doc_vectors.tolist())
        hnsw = {
            q: [h.chunk.source for h in index.query("scifact", query_vectors[n].tolist(), 10)]
            for n, q in enumerate(query_ids)
        }
    exact_ndcg, hnsw_ndcg = _mean(cited, exact), _mean(cited, hnsw)
    return Result(
        metrics={
            "ndcg_at_10_exact": exact_ndcg,
            "ndcg_at_10_published": PUBLISHED_NDCG10,
            "difference_to_published": exact_ndcg - PUBLISHED_NDCG10,
            "ndcg_at_10_hnsw": hnsw_ndcg,
            "hnsw_over_exact": hnsw_ndcg / exact_ndcg,
            "ndcg_at_10_exact_evidence_only": _mean(evidence, exact),
            "queries": len(cited),
            "queries_evidence_only": len(evidence),
            "documents": len(ids),
        },
        context={
            "model": services.settings.embedder.model,
            "protocol": "BEIR/MTEB SciFact test = dev claims, qrels = cited_doc_ids, "
            "documents = title + abstract, cosine, nDCG@10",
            "goal": "|difference_to_published| <= 0.01 and hnsw_over_exact >= 0.99",
        },
    )
