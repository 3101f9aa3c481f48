"""`ragqa finetune` and `ragqa adapters list|show|delete`: train adapters in this process (never
the server's), and look after them."""

from __future__ import annotations

import json
import shutil
import sys

import click

from finetune.adapters import AdapterStore
from finetune.datasets import DatasetStore, template_hash
from finetune.training import METHODS, TrainPlan, check_dataset, run_training
from generation.loading import load_causal_lm
from server.cli.common import domain_errors, print_json, services_of
from server.wiring import Services, resolve_generator


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
