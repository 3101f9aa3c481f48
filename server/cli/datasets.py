"""`ragqa dataset build|list|show`: training datasets from Q&A files, feedback and collections."""

from __future__ import annotations

import json
from pathlib import Path

import click

from finetune.datasets import SPLITS, Dataset, DatasetStore, SplitRule, template_hash
from finetune.factory import BuildPlan, Sources, build_dataset
from finetune.records import DatasetError
from generation.prompts import PromptTemplate
from server.cli.common import domain_errors, print_json, services_of
from server.wiring import Services


def dataset_store(services: Services) -> DatasetStore:
    """The datasets under RAGQA_HOME."""
    return DatasetStore(services.settings.datasets_path)


@click.group()
def dataset() -> None:
    """Training datasets (RAGQA_HOME/datasets/NAME/vN), built from your own material."""


@dataset.command()
@click.argument("name")
@click.option("--qa", "qa_files", multiple=True, type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="A Q&A file (JSONL or CSV: question, answer, optional "
              "source); repeatable.")  # fmt: skip
@click.option("--collection", "-c", default=None,
              help="Also make RAFT records: each question with the chunk of this collection "
              "that holds its answer, and retrieved distractors.")  # fmt: skip
@click.option("--feedback", is_flag=True, help="Add records from the answers users rated.")
@click.option("--generate", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also have the generator ask N questions of --collection's chunks.")  # fmt: skip
@click.option("--closed-book/--no-closed-book", default=True, show_default=True,
              help="Q&A pairs also as records without sources (the `finetuned` mode).")  # fmt: skip
@click.option("--template", "-t", default=None, help="Prompt template (default: the "
              "collection's, then RAGQA_ANSWERS__TEMPLATE).")  # fmt: skip
@click.option("--distractors", type=click.IntRange(0, 20), default=3, show_default=True)
@click.option("--refusal-share", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="RAFT records with distractors only, whose target is the refusal.")  # fmt: skip
@click.option("--validation-share", type=click.FloatRange(0, 1), default=0.1, show_default=True)
@click.option("--test-share", type=click.FloatRange(0, 1), default=0.2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N "
              "Q&A pairs (a quick build).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_context
def build(
    ctx: click.Context, name: str, qa_files: tuple[Path, ...], collection: str | None,
    feedback: bool, generate: int, closed_book: bool, template: str | None, distractors: int,
    refusal_share: float, validation_share: float, test_share: float, seed: int,
    limit: int | None, as_json: bool,
) -> None:  # fmt: skip
    """Build a new version of dataset NAME (the latest is reused if nothing changed)."""
    services = services_of(ctx)
    with domain_errors():
        rule = SplitRule(validation=validation_share, test=test_share, seed=seed)
        plan = BuildPlan(name=name, qa_files=qa_files, collection=collection, feedback=feedback,
                         closed_book=closed_book, template=template, distractors=distractors,
                         refusal_share=refusal_share, split=rule, limit=limit,
                         generate=generate)  # fmt: skip
        chosen = services.rag.template_for(collection or services.settings.collection, template)
        documents = services.index.documents(collection) if collection else {}
        if collection and not documents:
            raise DatasetError(f"The collection {collection!r} has no documents; ingest the "
                               "documents the Q&A pairs are about first.")  # fmt: skip
        index = services.index
        sources = Sources(prompter=services.rag, searcher=services.retriever,
                          documents=list(documents), refusal=chosen.refusal,
                          template=chosen.name, feedback=services.feedback,
                          generator=services.generator if generate else None,
                          chunks_of=lambda s: index.chunks_of(str(collection), s))  # fmt: skip
        built = build_dataset(plan, sources, dataset_store(services),
                              fingerprint=fingerprint(services, chosen))  # fmt: skip
    if as_json:
        print_json({"dataset": built.ref, "path": str(built.path), **built.manifest})
        return
    describe(built)


def fingerprint(services: Services, template: PromptTemplate) -> dict[str, object]:
    """What the records were rendered for: training refuses a dataset built for another base
    model (its prompts were fitted to that model's window and tokens) or an edited template."""
    return {"base_model": services.settings.generator.model,
            "context": services.settings.answers.context,
            "template_hash": template_hash(template)}  # fmt: skip


def describe(built: Dataset) -> None:
    """A dataset version in a few lines."""
    m = built.manifest
    click.echo(f"{built.ref}  ({built.path})")
    click.echo(f"  base model {m.get('base_model')}, template {m.get('template')}, "
               f"content {str(m.get('content_hash', ''))[:12]}")  # fmt: skip
    for split in SPLITS:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(m["counts"][split].items())) or "empty"
        click.echo(f"  {split}: {counts} ({len(m['documents'][split])} documents)")
    if any(m.get("skipped", {}).values()):
        click.echo(f"  skipped: {json.dumps(m['skipped'])}")


@dataset.command("list")
@click.pass_context
def list_datasets(ctx: click.Context) -> None:
    """Every dataset and its versions."""
    store = dataset_store(services_of(ctx))
    names = store.names()
    if not names:
        click.echo("No datasets yet; build one with `ragqa dataset build NAME --qa FILE`.")
    for name in names:
        for version in store.versions(name):
            total = sum(sum(c.values()) for c in version.manifest["counts"].values())
            click.echo(f"{version.ref}  {total} records  {version.manifest.get('created', '')}")


@dataset.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """One dataset version (NAME for the latest, or NAME@vN)."""
    with domain_errors():
        found = dataset_store(services_of(ctx)).get(ref)
    if as_json:
        print_json({"dataset": found.ref, "path": str(found.path), **found.manifest})
        return
    describe(found)
