"""What every `ragqa` command shares: the Services, domain errors as messages, JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from pydantic import ValidationError

from server.errors import classify
from server.settings import Settings
from server.wiring import Services


def services_of(ctx: click.Context) -> Services:
    """The Services given by a test, or built from the environment."""
    if ctx.obj is None:
        try:
            ctx.obj = Services(Settings())
        except ValidationError as error:
            raise click.ClickException(f"Invalid RAGQA_* setting:\n{error}") from error
    found: Services = ctx.obj
    return found


@contextmanager
def domain_errors() -> Iterator[None]:
    """Known errors become a one-line message and exit code 2, not a traceback."""
    try:
        yield
    except Exception as error:
        if classify(error) is None:
            raise
        raise click.ClickException(str(error)) from error


def print_json(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
