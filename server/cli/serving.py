"""`ragqa serve`: the chat page and the HTTP API under gunicorn."""

from __future__ import annotations

import ipaddress
import logging
import os
import tempfile
from collections.abc import Callable

import click

from retrieval.home_store import StoreBusyError, keep_home_server, live_server
from server.cli.common import services_of
from server.logs import use_json_logs
from server.wiring import Services

SPARE_THREADS = 8  # health, metrics, listings and uploads need no model seat


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def share_home_store(services: Services) -> tuple[list[str], Callable[[], None]]:
    """Serve the home's store to every process (see retrieval.home_store); first, while this
    process owns it alone, repair what a crash damaged (repairs rewrite the store's files).
    Returns the collections repaired, and what stops the serving sooner than exit."""
    store, wait = services.settings.chroma_path, services.settings.chroma.lock_timeout_s
    repaired: list[str] = []
    if live_server(store) is None:
        repaired = services.index.check()
        services.close()
    return repaired, keep_home_server(store, wait_s=wait)


@click.command()
@click.option("--host", default=None, help="Address to bind (default from settings: 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default from settings: 8000).")
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(1, 10_000),
    help="Request threads (default: the model's seats, RAGQA_GENERATOR__MAX_WAITING + 1, plus 8 "
    "for routes that need no model, so a request the model cannot seat gets 503 at once).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes. Each loads its own models; they share the store, keyword index, "
    "jobs, keys, feedback, rate limits and metrics of the home.",
)
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
    threads: int | None,
    workers: int,
    allow_unauthenticated: bool,
) -> None:
    """Serve the chat page and the HTTP API (gunicorn: worker processes with threads)."""
    services = services_of(ctx)
    server = services.settings.server
    bind_host = host or server.host
    keyless = server.api_key is None and not services.keys.required()
    if not _is_loopback(bind_host) and keyless and not allow_unauthenticated:
        raise click.ClickException(
            f"Refusing to serve {bind_host} without an API key: set RAGQA_SERVER__API_KEY or "
            "create keys with `ragqa keys create`, or pass --allow-unauthenticated if "
            "something in front of ragqa checks callers."
        )
    if server.log_format == "json":
        use_json_logs()
    logging.getLogger("ragqa.access").setLevel(logging.INFO)  # one line per request, always
    from server.production import run_gunicorn

    chroma = services.settings.chroma
    if workers > 1 and not (chroma.host or chroma.share_home):
        raise click.ClickException(
            "--workers above 1 needs a shared store: unset RAGQA_CHROMA__SHARE_HOME=false "
            "or set RAGQA_CHROMA__HOST to a Chroma server."
        )
    if not chroma.host and chroma.share_home:
        # The home's store is served to the workers and to any ragqa command run meanwhile.
        try:
            share_home_store(services)
        except StoreBusyError as error:
            raise click.ClickException(str(error)) from None

    # More threads than model seats: the overflow reaches the model's queue and is refused with
    # 503 and Retry-After, instead of waiting unseen in gunicorn's backlog.
    threads = threads or services.settings.generator.max_waiting + 1 + SPARE_THREADS
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics sums the workers' counts, kept in files in this (empty, private) folder.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ragqa-metrics-")
    run_gunicorn(services, host=bind_host, port=port or server.port, threads=threads,
                 workers=workers)  # fmt: skip
