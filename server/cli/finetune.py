"""`ragqa finetune` and `ragqa adapters list|show|delete`: train adapters in this process (never
the server's), and look after them."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from finetune.adapters import AdapterStore
from finetune.datasets import DatasetStore, template_hash
from finetune.promotion import Margins, gate
from finetune.records import DatasetError
from finetune.scoring import dataset_questions, evaluate, read_questions
from finetune.training import METHODS, TrainPlan, check_dataset, run_training
from generation.loading import load_causal_lm
from generation.rag import Request
from server.cli.common import domain_errors, print_json, services_of
from server.packaged import resolve_generator
from server.wiring import Services


def adapter_store(services: Services) -> AdapterStore:
    """The adapters under RAGQA_HOME."""
    return services.adapters


@click.command()
@click.option("--method", "-m", type=click.Choice(METHODS), required=True,
              help="lora or prompt_tuning (closed-book records), raft (LoRA on the rag "
              "records), dpo (preference pairs from feedback).")  # fmt: skip
@click.option("--data", "-d", required=True, help="Dataset: NAME (latest), NAME@vN or a folder.")
@click.option("--name", "-n", required=True, help="The adapter's name.")
@click.option("--budget-minutes", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Stop (with a checkpoint) after this long.")  # fmt: skip
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True)  # fmt: skip
@click.option("--max-steps", type=click.IntRange(min=1), default=None)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--rank", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--eval-every", type=click.IntRange(min=1), default=25, show_default=True,
              help="Steps between validation losses (and checkpoints).")  # fmt: skip
@click.option("--eval-records", type=click.IntRange(min=1), default=32, show_default=True,
              help="Validation records scored each time.")  # fmt: skip
@click.option("--patience", type=click.IntRange(min=1), default=3, show_default=True,
              help="Stop after this many validations without a better loss.")  # fmt: skip
@click.option("--max-length", type=click.IntRange(min=16), default=2048, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--restart", is_flag=True, help="Discard an interrupted run's checkpoints.")
@click.option("--json", "as_json", is_flag=True, help="Print the adapter's info as JSON.")
@click.pass_context
def finetune(
    ctx: click.Context, method: str, data: str, name: str, budget_minutes: float, epochs: float,
    max_steps: int | None, learning_rate: float | None, batch_size: int, rank: int,
    eval_every: int, eval_records: int, patience: int, max_length: int, seed: int,
    restart: bool, as_json: bool,
) -> None:  # fmt: skip
    """Train an adapter on a dataset; run the same command again to resume an interrupted run."""
    services = services_of(ctx)
    settings = services.settings
    adapters = adapter_store(services)
    plan = TrainPlan(method=method, name=name, budget_s=budget_minutes * 60, epochs=epochs,
                     max_steps=max_steps, learning_rate=learning_rate, batch_size=batch_size,
                     rank=rank, eval_every=eval_every, eval_records=eval_records, patience=patience,
                     max_length=max_length, seed=seed)  # fmt: skip
    with domain_errors():
        adapters.check_free(name)  # before minutes of training, not after
        dataset = DatasetStore(settings.datasets_path).get(data)
        template = services.templates.get(str(dataset.manifest.get("template")))
        check_dataset(dataset, base_model=settings.generator.model,
                      template_hash=template_hash(template))  # fmt: skip
        model, tokenizer = load_causal_lm(
            resolve_generator(settings.generator.model),
            cache_dir=settings.model_cache_dir,
            dtype="float32",
        )
        model.train()
        run_dir = adapters.run_dir(name)
        trainer, outcome = run_training(
            plan, dataset, model=model, tokenizer=tokenizer, run_dir=run_dir,
            base_model=settings.generator.model, progress=sys.stderr.isatty(), restart=restart,
            report=lambda line: click.echo(line, err=True),
        )  # fmt: skip
        info = {
            "method": method, "base_model": settings.generator.model, "dataset": dataset.ref,
            "dataset_hash": dataset.manifest["content_hash"], "template": template.name,
            "template_hash": template_hash(template), "plan": plan.__dict__,
            "metrics": {k: v for k, v in outcome.__dict__.items() if k != "history"},
            "history": outcome.history,
        }  # fmt: skip
        saved = adapters.save(name, trainer.model, info)
        shutil.rmtree(run_dir, ignore_errors=True)
    if as_json:
        print_json(saved.info)
        return
    m = saved.info["metrics"]
    click.echo(f"adapter {name!r} saved in {saved.path}: {m['steps']} steps ({m['stopped_by']}), "
               f"train loss {m['train_loss']}, validation loss {m['eval_loss']}, "
               f"{m['seconds']:.0f} s")  # fmt: skip


@click.group()
def adapters() -> None:
    """Trained adapters (RAGQA_HOME/adapters)."""


@adapters.command("list")
@click.pass_context
def list_adapters(ctx: click.Context) -> None:
    """Every adapter: method, dataset, validation loss."""
    store = adapter_store(services_of(ctx))
    if not store.names():
        click.echo("No adapters yet; train one with `ragqa finetune`.")
    default = store.default()
    for name in store.names():
        info = store.get(name).info
        mark = "  (default)" if name == default else ""
        click.echo(f"{name}{mark}  {info.get('method')}  {info.get('dataset')}  "
                   f"val loss {info.get('metrics', {}).get('eval_loss')}")  # fmt: skip


@adapters.command()
@click.argument("name")
@click.pass_context
def show(ctx: click.Context, name: str) -> None:
    """An adapter's info: method, base model, dataset, options, metrics."""
    with domain_errors():
        found = adapter_store(services_of(ctx)).get(name)
    click.echo(json.dumps(found.info, indent=2))


@adapters.command()
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete an adapter."""
    with domain_errors():
        adapter_store(services_of(ctx)).delete(name)
    click.echo(f"deleted adapter {name!r}")


@adapters.command()
@click.argument("name")
@click.option("--questions", "-q", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The frozen evaluation set (JSONL or CSV: question, answer, optional "
              "answerable); default: the test split of the adapter's dataset.")  # fmt: skip
@click.option("--collection", "-c", default=None, help="For the retrieving modes (default: the "
              "dataset's collection, then RAGQA_COLLECTION).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--f1-margin", type=click.FloatRange(0, 1), default=0.02, show_default=True)
@click.option("--refusal-margin", type=click.FloatRange(0, 1), default=0.02, show_default=True)
@click.option("--known-margin", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of the base's right answers the adapter may get wrong.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.pass_context
def promote(
    ctx: click.Context, name: str, questions: Path | None, collection: str | None, limit: int,
    f1_margin: float, refusal_margin: float, known_margin: float, as_json: bool,
) -> None:  # fmt: skip
    """Make NAME the default adapter, only if it does not regress against the base model."""
    services = services_of(ctx)
    with domain_errors():
        found = services.adapters.get(name)
        retrieving = found.info.get("method") in ("raft", "dpo")
        base_mode, tuned_mode = ("rag", "finetuned_rag") if retrieving else (
            "closed_book", "finetuned")  # fmt: skip
        dataset = DatasetStore(services.settings.datasets_path).get(str(found.info["dataset"]))
        form = "rag" if retrieving else "closed_book"
        asked = (read_questions(questions) if questions else
                 dataset_questions(dataset, form=form))[:limit]  # fmt: skip
        if not asked:
            raise DatasetError(f"{dataset.ref} has no test questions; give --questions FILE.")
        inputs = [i for i in dataset.manifest.get("inputs", []) if i.get("kind") == "collection"]
        where = collection or (inputs[0]["name"] if inputs else services.settings.collection)

        def ask(mode: str, adapter: str | None) -> Any:
            return lambda q: services.rag.answer(
                Request(q.question, where, mode=mode, strict=True, adapter=adapter)
            )

        base = evaluate(ask(base_mode, None), asked)
        tuned = evaluate(ask(tuned_mode, name), asked)
        verdict = gate(base, tuned, Margins(f1_margin, refusal_margin, known_margin))
        evaluation = verdict.to_dict() | {
            "modes": [base_mode, tuned_mode], "questions": str(questions or dataset.ref),
            "margins": [f1_margin, refusal_margin, known_margin],
        }  # fmt: skip
        services.adapters.update_info(name, promotion=evaluation)
        if verdict.passed:
            services.adapters.promote(name, evaluation)
    if as_json:
        print_json(evaluation)
    else:
        for label, row in (("base", verdict.base), (name, verdict.adapter)):
            click.echo(f"{label:>20}  F1 {row['token_f1']:.3f}  refusal accuracy "
                       f"{row['refusal_accuracy']:.3f}  right {row['correct']:.3f}")  # fmt: skip
        click.echo(f"{verdict.lost} of the {verdict.known} questions the base model got right "
                   "are now wrong")  # fmt: skip
    if not verdict.passed:
        raise click.ClickException("not promoted: " + "; ".join(verdict.reasons))
    click.echo(f"{name!r} is now the default adapter", err=True)


@adapters.command()
@click.pass_context
def demote(ctx: click.Context) -> None:
    """Make no adapter the default (the finetuned modes then need one named)."""
    was = services_of(ctx).adapters.demote()
    click.echo(f"{was!r} is no longer the default adapter" if was else "No default adapter.")
