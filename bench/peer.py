"""ragqa beside the LangChain RAG quickstart (bench/peer_quickstart.py) on the same 50 covid_qa
questions, documents, embedder and generator weights, in one run: answer latency (ragqa's
/api/chat over real HTTP, generative `rag` and the default mode; the quickstart's chain
in-process), token F1 against the gold answers, and retrieval hit rates (the gold article among
the passages retrieved, the gold answer inside the context the model was given).

The quickstart runs in its own environment: `make peer`, or RAGQA_PEER_PYTHON naming a Python
with pyproject's dependency group `peer` installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.answer_sets import REPOSITORY, AnswerSet, load_set
from bench.answers import contains, without_markers
from bench.engines import Recording, ask_over_http
from bench.report import Result, percentile
from finetune.scoring import token_f1
from generation.ctranslate_models import read_checkpoint
from ingest.discovery import source_id
from server.packaged import resolve_embedder, resolve_generator
from server.settings import Settings
from server.wiring import Services

QUICKSTART = Path(__file__).with_name("peer_quickstart.py")
PEER_PYTHON = REPOSITORY / ".venv-peer" / "bin" / "python"


def _files(answers: AnswerSet) -> list[Path]:
    found: list[Path] = []
    for path in answers.paths:
        found += sorted(path.glob("*.txt")) if path.is_dir() else [path]
    return found


def _peer(job: dict[str, Any], work: Path) -> dict[str, Any]:
    python = Path(os.environ.get("RAGQA_PEER_PYTHON", PEER_PYTHON))
    if not python.exists():
        raise SystemExit(f"The LangChain quickstart needs its own environment: run `make peer` "
                         f"(or set RAGQA_PEER_PYTHON); {python} does not exist.")  # fmt: skip
    out, log = work / "peer.json", work / "peer.log"
    with log.open("w") as err:
        sent = json.dumps(job | {"out": str(out)})
        done = subprocess.run([str(python), str(QUICKSTART)], input=sent, text=True,
                              stdout=err, stderr=err, check=False)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"the quickstart failed: {log.read_text()[-3000:]}")
    return dict(json.loads(out.read_text()))


def _f1(text: str, gold: str) -> float:
    return token_f1(without_markers(text), gold)


def run_peer(*, data: Path, quick: bool) -> Result:
    """50 questions (10 with --quick) through the quickstart, then through ragqa."""
    answers = load_set("covid_qa", data, 10 if quick else 50)
    items, files = answers.items, _files(answers)
    questions = [item.question for item in items]
    metrics: dict[str, float] = {"questions": len(items), "documents": len(files)}
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        settings = Settings(home=Path(tmp) / "home", server={"rate_limit_per_minute": 0},
                            _env_file=None)  # fmt: skip
        source = read_checkpoint(resolve_generator(settings.generator.model),
                                 settings.model_cache_dir).source  # fmt: skip
        max_new = settings.generator.max_new_tokens
        peer = _peer({"files": [str(f) for f in files], "questions": questions, "model": source,
                      "embedder": resolve_embedder(settings.embedder.model),
                      "max_new_tokens": max_new}, Path(tmp))  # fmt: skip
        base = Services(settings)
        base.warm_up()
        recorder = Recording(base.generator)
        services = Services(settings, embedder=base.embedder, generator=recorder)
        started = time.perf_counter()
        report = services.ingestor.ingest(files, collection="peer")
        ragqa_index_s = time.perf_counter() - started
        replies = {
            mode: ask_over_http(services, questions, "peer", mode) for mode in ("rag", "extractive")
        }
        prompts = _prompts(recorder, questions)
        retrieved = [services.retriever.search(q, collection="peer", k=settings.retrieval.top_k)
                     for q in questions]  # fmt: skip
    gold_sources = [_gold_source(item, files) for item in items]
    peer_answers = peer["answers"]
    rows = {
        "quickstart": {
            "index_s": peer["index_s"], "chunks": peer["chunks"],
            "seconds": [a["seconds"] for a in peer_answers],
            "f1": [_f1(a["answer"], i.gold) for a, i in zip(peer_answers, items, strict=True)],
            "gold_article": [source_id(Path(gold)) in {source_id(Path(s)) for s in a["sources"]}
                             for a, gold in zip(peer_answers, gold_sources, strict=True)],
            "answer_in_context": [contains(a["context"], i.gold)
                                  for a, i in zip(peer_answers, items, strict=True)],
        },
    }  # fmt: skip
    for mode, got in replies.items():
        rows[f"ragqa_{mode}"] = {
            "index_s": ragqa_index_s, "chunks": report.chunks_added,
            "seconds": [r["seconds"] for r in got],
            "f1": [0.0 if r["refused"] else _f1(r["answer"], i.gold)
                   for r, i in zip(got, items, strict=True)],
            "gold_article": [source_id(Path(g)) in {h.chunk.source for h in hits}
                             for hits, g in zip(retrieved, gold_sources, strict=True)],
        }  # fmt: skip
    rows["ragqa_rag"]["answer_in_context"] = [
        contains(p, i.gold) for p, i in zip(prompts, items, strict=True)
    ]
    for name, row in rows.items():
        n = len(row["seconds"])
        metrics |= {
            f"{name}_index_s": row["index_s"], f"{name}_chunks": row["chunks"],
            f"{name}_p50_s": percentile(row["seconds"], 50),
            f"{name}_p95_s": percentile(row["seconds"], 95),
            f"{name}_token_f1": sum(row["f1"]) / n,
            f"{name}_gold_article_retrieved": sum(row["gold_article"]) / n,
        }  # fmt: skip
        if "answer_in_context" in row:
            metrics[f"{name}_answer_in_context"] = sum(row["answer_in_context"]) / n
    for mode in ("rag", "extractive"):
        metrics[f"ragqa_{mode}_p50_over_quickstart"] = (
            metrics[f"ragqa_{mode}_p50_s"] / metrics["quickstart_p50_s"]
        )
        metrics[f"ragqa_{mode}_f1_minus_quickstart"] = (
            metrics[f"ragqa_{mode}_token_f1"] - metrics["quickstart_token_f1"]
        )
    return Result(metrics=metrics, context={
        "generator": settings.generator.model, "generator_backend": type(base.generator).__name__,
        "embedder_backend": settings.embedder.backend, "max_new_tokens": max_new,
        "quickstart": "RecursiveCharacterTextSplitter 1000/200, HuggingFaceEmbeddings, Chroma, "
                      "k=4, rlm/rag-prompt, ChatHuggingFace greedy",
        "ragqa": f"top_k {settings.retrieval.top_k}, {settings.retrieval.mode} retrieval",
        "goal": "ragqa /api/chat p50 <= 0.5x the quickstart's",
    })  # fmt: skip


def _prompts(recorder: Recording, questions: list[str]) -> list[str]:
    """The prompt each question got ("" when it was refused before the model was asked)."""
    found = {}
    for messages, _ in recorder.calls:
        for question in questions:
            if question in messages[-1]["content"]:
                found[question] = "\n".join(m["content"] for m in messages)
    return [found.get(q, "") for q in questions]


def _gold_source(item: Any, files: list[Path]) -> str:
    """The file whose source id the item's judge accepts for a chunk spanning it."""
    return next(str(f) for f in files if item.holds(source_id(f), 0, 10**9))
