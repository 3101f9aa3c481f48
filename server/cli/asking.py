"""`ragqa ask` and `ragqa search`: answers, and what retrieval finds for them."""

from __future__ import annotations

import json
import threading

import click

from generation.rag import Request
from generation.types import Answer, AnswerMode
from retrieval.filters import SearchFilter
from retrieval.types import SearchMode
from server.cli.common import domain_errors, print_json, services_of
from server.feedback import recorded
from server.wiring import Services


@click.command()
@click.argument("question")
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option(
    "--mode", default=None,
    type=click.Choice([m.value for m in AnswerMode]),
    help="rag, closed_book (no retrieval), few_shot (examples, no retrieval), extractive "
    "(the sources' own sentences, no model call), finetuned or finetuned_rag (closed_book or "
    "rag with a fine-tuned adapter); default RAGQA_ANSWERS__MODE.",
)  # fmt: skip
@click.option("--template", "-t", default=None, help="Prompt template (docs, support, extract…).")
@click.option("--strict/--no-strict", default=None, help="Refuse unsupported answers.")
@click.option("--adapter", "-a", default=None,
              help="Adapter for the finetuned modes (default: the promoted one).")  # fmt: skip
@click.option(
    "--retrieval-mode", default=None, type=click.Choice([m.value for m in SearchMode]),
    help="dense, keyword or hybrid (default from settings).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--stream", is_flag=True, help="Print the answer as it is written.")
@click.pass_context
def ask(
    ctx: click.Context, question: str, collection: str | None, mode: str, template: str | None,
    strict: bool | None, adapter: str | None, retrieval_mode: str | None, as_json: bool,
    stream: bool,
) -> None:  # fmt: skip
    """Answer a question from a collection, with the sources used."""
    services = services_of(ctx)
    asked = Request(question, collection=collection or services.settings.collection, mode=mode,
                    template=template, strict=strict, search={"mode": retrieval_mode},
                    adapter=adapter)  # fmt: skip
    with domain_errors():
        if stream and not as_json:
            answer = _stream_to_terminal(services, asked)
        else:
            answer = services.rag.answer(asked)
    answer = recorded(services, answer, asked.collection)
    if as_json:
        print_json(answer.to_dict())
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


@click.command()
@click.argument("query")
@click.option("--collection", "-c", default=None, help="Collection name (default from settings).")
@click.option("-k", "k", default=None, type=int, help="How many chunks (default from settings).")
@click.option(
    "--retrieval-mode", default=None, type=click.Choice([m.value for m in SearchMode]),
    help="dense, keyword or hybrid (default from settings).",
)  # fmt: skip
@click.option("--filter", "filters", default=None, help='Search filter as JSON, e.g. {"page": 3}.')
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search(
    ctx: click.Context, query: str, collection: str | None, k: int | None,
    retrieval_mode: str | None, filters: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Show the chunks a question retrieves, with their scores (no generation)."""
    services = services_of(ctx)
    name = collection or services.settings.collection
    with domain_errors():
        hits = services.retriever.search(
            query, collection=name, k=k, mode=retrieval_mode, where=_parse_filter(filters)
        )
    if as_json:
        print_json({"query": query, "collection": name, "hits": [h.to_dict() for h in hits]})
        return
    for rank, hit in enumerate(hits, start=1):
        page = f", page {hit.chunk.page}" if hit.chunk.page is not None else ""
        click.echo(f"{rank}. {hit.score:.3f}  {hit.chunk.source}{page}")
        click.echo("   " + " ".join(hit.chunk.text.split())[:200])
