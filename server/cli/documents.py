"""`ragqa ingest`, `collections`, `documents` and `delete`: what is in the collections."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ingest.discovery import source_id
from ingest.formats import FORMATS
from ingest.report import FileResult
from server.cli.common import domain_errors, print_json, services_of

KNOWN_FORMATS = ", ".join(sorted({f.name for f in FORMATS.values()}))


class _TerminalProgress:
    """A progress bar with files, chunks and rate, on a terminal only."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._chunks = 0

    def start(self, total_files: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total_files, unit="file", disable=not sys.stderr.isatty(), file=sys.stderr
        )

    def file_done(self, result: FileResult) -> None:
        self._chunks += result.chunks_added
        if self._bar is not None:
            rate = self._chunks / max(self._bar.format_dict["elapsed"], 1e-6)
            self._bar.set_postfix_str(f"{self._chunks} chunks, {rate:.0f} chunks/s")
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _read_passwords(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise click.ClickException(f"Cannot read passwords file {path}: {error}") from error
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise click.ClickException(
            f'{path} must be a JSON object mapping file names to passwords: {{"a.pdf": "pw"}}'
        )
    return {str(k): v for k, v in data.items()}


@click.command(help=f"Add documents: {KNOWN_FORMATS} files, or folders of them.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option(
    "--password",
    default=None,
    help="Password to try on encrypted PDFs and Word, Excel, PowerPoint files.",
)
@click.option(
    "--passwords-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help='JSON {"file.pdf": "password"}; keys match the end of a path.',
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[Path, ...],
    collection: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    password: str | None,
    passwords_file: Path | None,
    as_json: bool,
) -> None:
    """Add documents (the formats are listed in --help; folders too)."""
    services = services_of(ctx)
    name = collection or services.settings.collection
    progress = _TerminalProgress()
    with domain_errors():
        try:
            report = services.ingestor.ingest(
                list(paths), collection=name, include=include, exclude=exclude,
                passwords=_read_passwords(passwords_file), password=password, progress=progress,
            )  # fmt: skip
        finally:
            progress.close()
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(
            f"{report.files_ok} files ingested into {name!r} ({report.files_unchanged} "
            f"unchanged), {report.files_failed} failed; {report.chunks_added} chunks added, "
            f"{report.chunks_removed} removed."
        )
        for path, pages in report.ocr_pages.items():
            click.echo(f"  read by OCR: {path}, pages {', '.join(map(str, pages))}")
        if report.attachments:
            click.echo(f"  {len(report.attachments)} e-mail attachments read as documents")
        for error in report.attachment_errors:
            click.echo(f"  attachment not read {error.path}: {error.error}", err=True)
        for error in report.errors:
            click.echo(f"  failed {error.path}: {error.error}", err=True)
        if report.skipped:
            click.echo(f"  {len(report.skipped)} files of unsupported types skipped", err=True)
    if report.files_ok == 0 and report.files_failed > 0:
        ctx.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def collections(ctx: click.Context, as_json: bool) -> None:
    """List collections with their documents and chunks."""
    services = services_of(ctx)
    with domain_errors():
        rows = [
            {"name": name, "documents": len(services.index.documents(name)),
             "chunks": services.index.count(name)}
            for name in services.index.list_collections()
        ]  # fmt: skip
    if as_json:
        print_json({"collections": rows})
        return
    for row in rows:
        click.echo(f"{row['name']}\t{row['documents']} documents\t{row['chunks']} chunks")


@click.command()
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def documents(ctx: click.Context, collection: str | None, as_json: bool) -> None:
    """List the documents of a collection: source, hash, pages, chunks, time, status."""
    services = services_of(ctx)
    name = collection or services.settings.collection
    with domain_errors():
        services.index.count(name)  # a clear error if the collection does not exist
        records = list(services.index.documents(name).values())
    if as_json:
        print_json({"collection": name, "documents": [r.to_dict() for r in records]})
        return
    for r in records:
        detail = r.error if r.status != "ready" else f"{r.pages} pages, {r.chunks} chunks"
        click.echo(f"{r.status}\t{r.ingested_at}\t{r.source}\t{detail}")


def _resolve_source(name: str, known: dict[str, Any]) -> str:
    """A document named as in the catalogue, or by a path to the file."""
    if name in known:
        return name
    return source_id(Path(name))


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("--all", "whole", is_flag=True, help="Delete the whole collection.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(
    ctx: click.Context, sources: tuple[str, ...], collection: str | None, whole: bool, yes: bool
) -> None:
    """Delete documents (by path or source) from a collection, or the whole collection (--all)."""
    services = services_of(ctx)
    name = collection or services.settings.collection
    if whole == bool(sources):
        raise click.UsageError("Name documents to delete, or pass --all for the whole collection.")
    with domain_errors():
        if whole:
            if not yes:
                click.confirm(f"Delete collection {name!r} and all its documents?", abort=True)
            services.index.delete_collection(name)
            click.echo(f"Deleted collection {name!r}.")
            return
        known = services.index.documents(name)
        for source in sources:
            removed = services.ingestor.delete(name, _resolve_source(source, known))
            click.echo(f"Deleted {source} ({removed} chunks).")
