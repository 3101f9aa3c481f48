"""RAG or fine-tuning, with numbers: covid_qa split by document; a RAFT adapter trained on the
train documents within a time budget; then every mode on the test documents' questions, with
paired bootstrap intervals, as a table, JSON and bench/results/arena/full/report.html; then the
same adapter out of domain (bench/transfer.py: ClapNQ refusals, Python FAQ F1).

With --work DIR the run is kept there: the same command again resumes it (training from its
last checkpoint, the comparisons from their last answer).

--quick runs the same pipeline in CI time on tiny models built in code (a 2-layer Llama and a
2-layer BERT), on 8 covid_qa articles: the numbers mean nothing, the pipeline is exercised.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.report import Result
from bench.transfer import out_of_domain
from finetune.adapters import AdapterNotFoundError
from finetune.arena import Arena, Ask, build_report
from finetune.datasets import DatasetStore, SplitRule, template_hash
from finetune.factory import BuildPlan, Sources, build_dataset
from finetune.report import write_report
from finetune.scoring import Question, dataset_questions
from finetune.training import Outcome, TrainPlan, run_training
from generation.loading import load_causal_lm
from generation.rag import Request
from generation.types import USES_ADAPTER, Answer, AnswerMode
from server.packaged import resolve_generator
from server.settings import Settings
from server.wiring import Services

MODES = [m.value for m in AnswerMode]
REPORT = Path("bench/results/arena")


def _services(home: Path, quick: bool) -> Services:
    overrides: dict[str, Any] = {"home": home, "_env_file": None}
    if quick:
        from tests.tiny import build_tiny_llama, build_tiny_sentence_transformer

        overrides |= {
            "generator": {"model": str(build_tiny_llama(home / "tiny-llama")), "max_new_tokens": 8},
            "embedder": {"model": str(build_tiny_sentence_transformer(home / "tiny-st"))},
            "retrieval": {"min_score": -1.0},
        }  # fmt: skip
    else:
        overrides["generator"] = {"max_new_tokens": 96}
    services = Services(Settings(**overrides))
    services.warm_up()
    return services


def _covid(data: Path, home: Path, documents: int | None) -> tuple[list[Path], Path]:
    """The articles to index and a Q&A file naming each answer's article."""
    rows = [json.loads(line) for line in
            (data / "covid_qa" / "covidqa_200423.flat.jsonl").read_text().splitlines()]  # fmt: skip
    files = sorted({r["document_file"] for r in rows})[:documents]
    rows = [r for r in rows if r["document_file"] in files]
    qa = home / "covid_qa.jsonl"
    pairs = ({"question": r["question"], "answer": r["answer"].strip(),
              "source": r["document_file"]} for r in rows)  # fmt: skip
    qa.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return [data / "covid_qa" / f for f in files], qa


@contextlib.contextmanager
def _workspace(work: Path | None) -> Iterator[Path]:
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        yield work.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="ragqa-arena-") as tmp:
        yield Path(tmp)


def _train(services: Services, dataset: Any, home: Path, minutes: float,
           quick: bool) -> tuple[Outcome, float]:  # fmt: skip
    """The RAFT adapter `covid-raft` (kept when a resumed run already saved it)."""
    settings = services.settings
    training = TrainPlan(method="raft", name="covid-raft", budget_s=60 * minutes,
                         max_steps=2 if quick else None, eval_every=25)  # fmt: skip
    try:
        saved = services.adapters.get("covid-raft").info
        if saved.get("dataset") == dataset.ref and saved.get("budget_s") == training.budget_s:
            return Outcome(**saved["outcome"]), training.budget_s
    except AdapterNotFoundError:
        pass
    model, tokenizer = load_causal_lm(resolve_generator(settings.generator.model),
                                      cache_dir=settings.model_cache_dir,
                                      dtype="float32")  # fmt: skip
    trainer, outcome = run_training(training, dataset, model=model, tokenizer=tokenizer,
                                    run_dir=home / "run", base_model=settings.generator.model,
                                    progress=not quick)  # fmt: skip
    services.adapters.save("covid-raft", trainer.model, {
        "method": "raft", "base_model": settings.generator.model, "dataset": dataset.ref,
        "budget_s": training.budget_s, "outcome": outcome.__dict__,
    }, replace=True)  # fmt: skip
    return outcome, training.budget_s


def run_arena(
    *, data: Path, quick: bool, limit: int | None = None, budget_minutes: float | None = None,
    work: Path | None = None, ood_limit: int | None = None,
) -> Result:  # fmt: skip
    """Train on the train split within `budget_minutes` (30), compare every mode on `limit`
    test questions (150; 6 quick), then extractive, rag and finetuned_rag on `ood_limit`
    ClapNQ answerable + as many unanswerable questions and as many Python FAQ ones (at most
    172) (300; 3 quick)."""
    limit = limit or (6 if quick else 150)
    with _workspace(work) as space:
        home = space / "home"
        home.mkdir(parents=True, exist_ok=True)
        services = _services(home, quick)
        settings = services.settings
        paths, qa = _covid(data, home, 8 if quick else None)
        services.ingestor.ingest(paths, collection="covid")
        template = services.rag.template_for("covid")
        sources = Sources(prompter=services.rag, searcher=services.retriever,
                          documents=list(services.index.documents("covid")),
                          refusal=template.refusal, template=template.name)  # fmt: skip
        plan = BuildPlan(name="covid", qa_files=[qa], collection="covid", closed_book=False,
                         split=SplitRule(validation=0.1, test=0.3),
                         limit=40 if quick else None)  # fmt: skip
        store = DatasetStore(settings.datasets_path)
        kept = store.versions("covid") if work is not None else []  # what a resumed run trained on
        fingerprint = {"base_model": settings.generator.model,
                       "template_hash": template_hash(template)}  # fmt: skip
        dataset = kept[-1] if kept else build_dataset(plan, sources, store, fingerprint=fingerprint)
        outcome, budget_s = _train(services, dataset, home, budget_minutes or (1 if quick else 30),
                                   quick)  # fmt: skip
        asked: list[Question] = dataset_questions(dataset, "test", "rag")[:limit]

        def asker(collection: str) -> Ask:
            def ask(question: Question, mode: str) -> Answer:
                adapter = "covid-raft" if mode in USES_ADAPTER else None
                return services.rag.answer(Request(question.question, collection, mode=mode,
                                                   adapter=adapter))  # fmt: skip

            return ask

        setting = {"generator": settings.generator.model, "quick": quick, "questions": len(asked),
                   "refusal_policy": settings.answers.refusal_policy,
                   "dataset": dataset.manifest["counts"], "training": outcome.__dict__ | {
                       "history": None}, "budget_s": budget_s}  # fmt: skip
        folder = REPORT / ("quick" if quick else "full")
        arena = Arena(folder, asked, MODES, setting)
        restart = work is None or not arena.resumable()  # the bench owns its report folders
        rows = arena.run(asker("covid"), restart=restart, progress=not quick)
        report, intervals = build_report(rows, MODES, setting)
        write_report(folder, report, rows, intervals)
        transfer = out_of_domain(services, data, space, asker, folder, setting=setting,
                                 per_set=ood_limit or (3 if quick else 300), quick=quick,
                                 restart=restart)  # fmt: skip
    metrics: dict[str, float] = {"test_questions": len(asked), "train_steps": outcome.steps}
    for mode, row in report["modes"].items():
        for key in ("token_f1", "written_citation_rate", "citation_precision",
                    "unanswerable_refused", "latency_p50_s"):  # fmt: skip
            metrics[f"{mode}_{key}"] = row[key]
    for pair in report["pairs"]:
        if pair["a"] == "finetuned_rag" or pair["b"] == "finetuned_rag":
            name = f"f1_{pair['a']}_minus_{pair['b']}"
            metrics[name] = pair["f1_difference"]
            metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = pair["ci95"]
    return Result(metrics=metrics | transfer,
                  context={"report": str(folder / "report.html"), **setting})  # fmt: skip
