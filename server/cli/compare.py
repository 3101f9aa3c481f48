"""`ragqa compare`: the arena, every question through every mode, as a table and a report."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from finetune.arena import Arena, build_report, split_modes
from finetune.datasets import DatasetStore
from finetune.report import write_report
from finetune.scoring import Question, dataset_questions, read_questions
from generation.rag import Request
from generation.types import USES_ADAPTER, Answer, AnswerMode
from server.cli.common import domain_errors, print_json, services_of

_SHOWN = ("token_f1", "exact_match", "written_citation_rate", "citation_precision",
          "unanswerable_refused", "answerable_refused", "latency_p50_s")  # fmt: skip


@click.command()
@click.option("--questions", "-q", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL or CSV: question, answer, optional answerable and source.")  # fmt: skip
@click.option(
    "--dataset",
    "-d",
    default=None,
    help="Instead of --questions: the test split of a dataset (NAME or NAME@vN).",
)
@click.option("--modes", "-m", default="closed_book,few_shot,extractive,rag", show_default=True,
              help="Comma-separated; add finetuned,finetuned_rag with --adapter.")  # fmt: skip
@click.option("--adapter", "-a", default=None, help="Adapter of the finetuned modes "
              "(default: the promoted one).")  # fmt: skip
@click.option("--collection", "-c", default=None, help="Collection the retrieving modes search.")
@click.option("--report", "-r", "folder", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for answers.jsonl, report.json and report.html.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N questions.")
@click.option("--restart", is_flag=True, help="Discard the answers of an earlier run.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-mode table as JSON.")
@click.pass_context
def compare(
    ctx: click.Context, questions: Path | None, dataset: str | None, modes: str,
    adapter: str | None, collection: str | None, folder: Path, limit: int | None,
    restart: bool, as_json: bool,
) -> None:  # fmt: skip
    """Answer the same questions in every mode and compare them, with confidence intervals.
    Run the same command again to resume an interrupted comparison."""
    services = services_of(ctx)
    settings = services.settings
    with domain_errors():
        chosen = split_modes(modes, [m.value for m in AnswerMode])
        if (questions is None) == (dataset is None):
            raise click.UsageError("Give --questions FILE or --dataset NAME (its test split).")
        if questions is not None:
            asked, origin = read_questions(questions), str(questions)
            digest = hashlib.sha256(questions.read_bytes()).hexdigest()
        else:
            found = DatasetStore(settings.datasets_path).get(str(dataset))
            asked, origin = dataset_questions(found, "test", "rag"), f"{found.ref} test"
            digest = found.manifest["content_hash"]
        asked = asked[:limit]
        if any(m in USES_ADAPTER for m in chosen):
            adapter = adapter or services.adapters.default()
            if adapter is None:
                raise click.UsageError("The finetuned modes need --adapter NAME (or a promoted "
                                       "adapter).")  # fmt: skip
            services.adapters.get(adapter)
        where = collection or settings.collection
        setting = {
            "questions": origin, "questions_sha256": digest,
            "limit": limit, "modes": chosen, "adapter": adapter, "collection": where,
            "generator": settings.generator.model,
            "max_new_tokens": settings.generator.max_new_tokens,
            "template": settings.answers.template, "retrieval": settings.retrieval.mode,
        }  # fmt: skip

        def ask(question: Question, mode: str) -> Answer:
            return services.rag.answer(Request(
                question.question, where, mode=mode,
                adapter=adapter if mode in USES_ADAPTER else None,
            ))  # fmt: skip

        arena = Arena(folder, asked, chosen, setting)
        rows = arena.run(ask, restart=restart, progress=True)
        report, intervals = build_report(rows, chosen, setting)
        _, page = write_report(folder, report, rows, intervals)
    if as_json:
        print_json(report["modes"])
        return
    click.echo(f"{'mode':<14}" + "".join(f"{c:>24}" for c in _SHOWN))
    for mode, row in report["modes"].items():
        click.echo(f"{mode:<14}" + "".join(f"{row[c]:>24.3f}" for c in _SHOWN))
    for pair in report["pairs"]:
        low, high = pair["ci95"]
        click.echo(f"F1 {pair['a']} - {pair['b']}: {pair['f1_difference']:+.3f} "
                   f"[{low:+.3f}, {high:+.3f}]")  # fmt: skip
    click.echo(f"report: {page}", err=True)
