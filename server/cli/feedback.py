"""`ragqa feedback list|export|rate`: what users said of the answers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from finetune.feedback import RATINGS
from server.cli.common import domain_errors, print_json, services_of

_RATING = click.Choice(RATINGS)


@click.group()
def feedback() -> None:
    """Ratings and corrections users gave answers (recorded in RAGQA_HOME/feedback.sqlite)."""


@feedback.command("list")
@click.option("--rating", type=_RATING, default=None, help="Only answers rated up, or down.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@click.pass_context
def list_feedback(ctx: click.Context, rating: str | None, limit: int, as_json: bool) -> None:
    """The most recently rated answers, newest first."""
    store = services_of(ctx).feedback
    with domain_errors():
        found = store.rated(rating=rating, limit=limit)
        counts = store.counts()
    if as_json:
        print_json({"counts": counts, "feedback": [r.to_dict() for r in found]})
        return
    click.echo(f"{counts['answers']} answers recorded; {counts['up']} rated up, "
               f"{counts['down']} down.")  # fmt: skip
    for record in found:
        click.echo(f"\n{record.answer_id}  {record.rating}  ({record.mode}, "
                   f"{record.collection or '-'})")  # fmt: skip
        click.echo(f"  Q: {record.question}")
        click.echo(f"  A: {record.answer}")
        if record.correction:
            click.echo(f"  correction: {record.correction}")
        if record.comment:
            click.echo(f"  comment: {record.comment}")


@feedback.command()
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write JSON lines to this file (default: standard output).")  # fmt: skip
@click.option("--rating", type=_RATING, default=None, help="Only answers rated up, or down.")
@click.pass_context
def export(ctx: click.Context, out: Path | None, rating: str | None) -> None:
    """Every rated answer as one JSON line: question, answer, sources, mode, adapter, rating,
    correction, comment (what `ragqa dataset build` reads)."""
    with domain_errors():
        found = services_of(ctx).feedback.rated(rating=rating)
    lines = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in found)
    if out is None:
        click.echo(lines, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(lines, encoding="utf-8")
    partial.replace(out)  # a reader never sees half a file
    click.echo(f"wrote {len(found)} records to {out}", err=True)


@feedback.command()
@click.argument("answer_id")
@click.argument("rating", type=_RATING)
@click.option("--correction", default=None, help="What the answer should have said.")
@click.option("--comment", default=None, help="Anything else about the answer.")
@click.pass_context
def rate(
    ctx: click.Context, answer_id: str, rating: str, correction: str | None, comment: str | None
) -> None:
    """Rate an answer by the answer_id `ragqa ask --json` or the server gave it."""
    with domain_errors():
        stored = services_of(ctx).feedback.rate(
            answer_id, rating, correction=correction, comment=comment
        )
    print_json(stored.to_dict())
