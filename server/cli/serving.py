"""`ragqa serve`: the chat page and the HTTP API under gunicorn."""

from __future__ import annotations

import ipaddress
import logging

import click

from server.cli.common import services_of
from server.logs import use_json_logs


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
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

    run_gunicorn(services, host=bind_host, port=port or server.port, threads=threads)
