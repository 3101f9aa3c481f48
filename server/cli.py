"""The `ragqa` command: ingest, ask, collections, serve."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ingest.pipeline import FileResult
from server.errors import classify
from server.settings import Settings
from server.wiring import Services

logger = logging.getLogger(__name__)


def _services(ctx: click.Context) -> Services:
    """The Services given by a test, or built from the environment."""
    if ctx.obj is None:
        try:
            ctx.obj = Services(Settings())
        except ValidationError as error:
            raise click.ClickException(f"Invalid RAGQA_* setting:\n{error}") from error
    found: Services = ctx.obj
    return found


@contextmanager
def _domain_errors() -> Iterator[None]:
    """Known errors become a one-line message and exit code 2, not a traceback."""
    try:
        yield
    except Exception as error:
        if classify(error) is None:
            raise
        raise click.ClickException(str(error)) from error


def _print_json(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def main(verbose: bool) -> None:
    """ragqa: ask questions, get answers from your documents with sources."""
    if not sys.stderr.isatty():
        # Model-loading progress bars only garble logs; keep them for people at a terminal.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # pypdf warns about every odd font or xref it repairs; the ingest report says what failed.
        logging.getLogger("pypdf").setLevel(logging.ERROR)


def _progress(total_hint: int | None) -> tuple[Callable[[FileResult], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total_hint, unit="file", disable=not sys.stderr.isatty(), file=sys.stderr)

    def update(result: FileResult) -> None:
        bar.set_postfix_str(f"{Path(result.path).name} +{result.chunks_added} chunks")
        bar.update(1)

    return update, bar.close


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ingest(
    ctx: click.Context, paths: tuple[Path, ...], collection: str | None, as_json: bool
) -> None:
    """Add text, markdown and PDF files (or folders of them) to a collection."""
    services = _services(ctx)
    name = collection or services.settings.collection
    update, close = _progress(None)
    with _domain_errors():
        try:
            report = services.ingestor.ingest(list(paths), collection=name, on_file=update)
        finally:
            close()
    if as_json:
        _print_json(report.to_dict())
    else:
        click.echo(
            f"{report.files_ok} files ingested into {name!r}, {report.files_failed} failed; "
            f"{report.chunks_added} chunks added, {report.chunks_removed} removed."
        )
        for error in report.errors:
            click.echo(f"  skipped {error.path}: {error.error}", err=True)
    if report.files_ok == 0 and report.files_failed > 0:
        ctx.exit(1)


@main.command()
@click.argument("question")
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("--mode", default="rag", show_default=True, help="How to answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def ask(
    ctx: click.Context, question: str, collection: str | None, mode: str, as_json: bool
) -> None:
    """Answer a question from a collection, with the sources used."""
    services = _services(ctx)
    with _domain_errors():
        answer = services.rag.answer(
            question, collection=collection or services.settings.collection, mode=mode
        )
    if as_json:
        _print_json(answer.to_dict())
        return
    click.echo(answer.text)
    if answer.citations:
        label = "Closest sources (not cited)" if answer.citations_inferred else "Sources"
        click.echo(f"\n{label}:")
        for c in answer.citations:
            page = f", page {c.page}" if c.page is not None else ""
            click.echo(f"  [{c.n}] {c.source}{page}")


@main.command()
@click.pass_context
def collections(ctx: click.Context) -> None:
    """List collections and how many chunks each holds."""
    services = _services(ctx)
    with _domain_errors():
        for name in services.index.list_collections():
            click.echo(f"{name}\t{services.index.count(name)}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@main.command()
@click.option("--host", default=None, help="Address to bind (default from settings: 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default from settings: 8000).")
@click.option("--threads", default=4, show_default=True, help="Request threads.")
@click.option(
    "--allow-unauthenticated",
    is_flag=True,
    help="Serve a non-loopback address without RAGQA_SERVER__API_KEY (not recommended).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    threads: int,
    allow_unauthenticated: bool,
) -> None:
    """Serve the chat page and the HTTP API (gunicorn, one process, several threads)."""
    services = _services(ctx)
    server = services.settings.server
    bind_host = host or server.host
    if not _is_loopback(bind_host) and server.api_key is None and not allow_unauthenticated:
        raise click.ClickException(
            f"Refusing to serve {bind_host} without an API key: set RAGQA_SERVER__API_KEY, "
            "or pass --allow-unauthenticated if something in front of ragqa checks callers."
        )
    from server.production import run_gunicorn

    run_gunicorn(services, host=bind_host, port=port or server.port, threads=threads)
