"""The `ragqa` command: ingest, ask, collections, serve."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from generation.rag import Request
from generation.types import Answer
from ingest.pipeline import FileResult, source_id
from retrieval.filters import SearchFilter
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


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option("--password", default=None, help="Password to try on encrypted PDFs.")
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
    """Add documents (text, markdown, rst, HTML, PDF, FAQ JSONL/CSV; folders too)."""
    services = _services(ctx)
    name = collection or services.settings.collection
    progress = _TerminalProgress()
    with _domain_errors():
        try:
            report = services.ingestor.ingest(
                list(paths), collection=name, include=include, exclude=exclude,
                passwords=_read_passwords(passwords_file), password=password, progress=progress,
            )  # fmt: skip
        finally:
            progress.close()
    if as_json:
        _print_json(report.to_dict())
    else:
        click.echo(
            f"{report.files_ok} files ingested into {name!r} ({report.files_unchanged} "
            f"unchanged), {report.files_failed} failed; {report.chunks_added} chunks added, "
            f"{report.chunks_removed} removed."
        )
        for error in report.errors:
            click.echo(f"  failed {error.path}: {error.error}", err=True)
        if report.skipped:
            click.echo(f"  {len(report.skipped)} files of unsupported types skipped", err=True)
    if report.files_ok == 0 and report.files_failed > 0:
        ctx.exit(1)


@main.command()
@click.argument("question")
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option(
    "--mode", default="rag", show_default=True,
    help="rag, closed_book (no retrieval) or few_shot (examples, no retrieval).",
)  # fmt: skip
@click.option("--template", "-t", default=None, help="Prompt template (docs, support, extract…).")
@click.option("--strict/--no-strict", default=None, help="Refuse unsupported answers.")
@click.option("--retrieval-mode", default=None, help="dense, keyword or hybrid.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--stream", is_flag=True, help="Print the answer as it is written.")
@click.pass_context
def ask(
    ctx: click.Context, question: str, collection: str | None, mode: str, template: str | None,
    strict: bool | None, retrieval_mode: str | None, as_json: bool, stream: bool,
) -> None:  # fmt: skip
    """Answer a question from a collection, with the sources used."""
    services = _services(ctx)
    asked = Request(question, collection=collection or services.settings.collection, mode=mode,
                    template=template, strict=strict, search={"mode": retrieval_mode})  # fmt: skip
    with _domain_errors():
        if stream and not as_json:
            answer = _stream_to_terminal(services, asked)
        else:
            answer = services.rag.answer(asked)
    if as_json:
        _print_json(answer.to_dict())
        return
    if not stream:
        click.echo(answer.text)
    if answer.citations:
        label = "Closest sources (not cited)" if answer.citations_inferred else "Sources"
        click.echo(f"\n{label}:")
        for c in answer.citations:
            page = f", page {c.page}" if c.page is not None else ""
            flag = (
                "  (does not support what cites it)" if c.n in answer.unsupported_citations else ""
            )
            click.echo(f"  [{c.n}] {c.source}{page}{flag}")
    if answer.context is not None and answer.context.dropped:
        click.echo(f"\n{len(answer.context.dropped)} retrieved sources did not fit the model's "
                   "context window and were left out.", err=True)  # fmt: skip


def _stream_to_terminal(services: Services, asked: Request) -> Answer:
    """Print tokens as they come; if the checks replace the text (a refusal), say so.

    Runs off the main thread: streaming generates in a second thread, and once the main thread
    has run torch's threaded kernels, other threads get only one core for them (about 1.7x
    slower decoding on 2 cores, measured). Threads that start first are not affected.
    """
    result: list[Answer] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(_print_stream(services, asked))
        except BaseException as error:  # re-raised in the main thread
            failure.append(error)

    worker = threading.Thread(target=run, name="ragqa-ask", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]


def _print_stream(services: Services, asked: Request) -> Answer:
    shown: list[str] = []
    for event in services.rag.stream(asked):
        if event.kind == "token":
            shown.append(event.data)
            click.echo(event.data, nl=False)
        elif event.kind == "answer":
            answer: Answer = event.data
    click.echo()
    if answer.refused and shown:
        click.echo(f"\n(refused: {answer.refusal_reason})\n{answer.text}")
    elif not shown:
        click.echo(answer.text)
    return answer


def _parse_filter(text: str | None) -> SearchFilter | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise click.BadParameter(f"--filter is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise click.BadParameter('--filter must be a JSON object, e.g. {"page": 3}')
    where = SearchFilter.parse(data)
    return None if where.empty else where


@main.command()
@click.argument("query")
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("-k", "k", default=None, type=int, help="How many chunks (default from settings).")
@click.option("--retrieval-mode", type=click.Choice(["dense", "keyword", "hybrid"]), default=None)
@click.option("--filter", "filters", default=None, help='Search filter as JSON, e.g. {"page": 3}.')
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search(
    ctx: click.Context, query: str, collection: str | None, k: int | None,
    retrieval_mode: str | None, filters: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Show the chunks a question retrieves, with their scores (no generation)."""
    services = _services(ctx)
    name = collection or services.settings.collection
    with _domain_errors():
        hits = services.retriever.search(
            query, collection=name, k=k, mode=retrieval_mode, where=_parse_filter(filters)
        )
    if as_json:
        _print_json({"query": query, "collection": name, "hits": [h.to_dict() for h in hits]})
        return
    for rank, hit in enumerate(hits, start=1):
        page = f", page {hit.chunk.page}" if hit.chunk.page is not None else ""
        click.echo(f"{rank}. {hit.score:.3f}  {hit.chunk.source}{page}")
        click.echo("   " + " ".join(hit.chunk.text.split())[:200])


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def collections(ctx: click.Context, as_json: bool) -> None:
    """List collections with their documents and chunks."""
    services = _services(ctx)
    with _domain_errors():
        rows = [
            {"name": name, "documents": len(services.index.documents(name)),
             "chunks": services.index.count(name)}
            for name in services.index.list_collections()
        ]  # fmt: skip
    if as_json:
        _print_json({"collections": rows})
        return
    for row in rows:
        click.echo(f"{row['name']}\t{row['documents']} documents\t{row['chunks']} chunks")


@main.command()
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def documents(ctx: click.Context, collection: str | None, as_json: bool) -> None:
    """List the documents of a collection: source, hash, pages, chunks, time, status."""
    services = _services(ctx)
    name = collection or services.settings.collection
    with _domain_errors():
        services.index.count(name)  # a clear error if the collection does not exist
        records = list(services.index.documents(name).values())
    if as_json:
        _print_json({"collection": name, "documents": [r.to_dict() for r in records]})
        return
    for r in records:
        detail = r.error if r.status != "ready" else f"{r.pages} pages, {r.chunks} chunks"
        click.echo(f"{r.status}\t{r.ingested_at}\t{r.source}\t{detail}")


def _resolve_source(name: str, known: dict[str, Any]) -> str:
    """A document named as in the catalogue, or by a path to the file."""
    if name in known:
        return name
    return source_id(Path(name))


@main.command()
@click.argument("sources", nargs=-1)
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("--all", "whole", is_flag=True, help="Delete the whole collection.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(
    ctx: click.Context, sources: tuple[str, ...], collection: str | None, whole: bool, yes: bool
) -> None:
    """Delete documents (by path or source) from a collection, or the whole collection (--all)."""
    services = _services(ctx)
    name = collection or services.settings.collection
    if whole == bool(sources):
        raise click.UsageError("Name documents to delete, or pass --all for the whole collection.")
    with _domain_errors():
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
