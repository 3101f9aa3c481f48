"""Server-sent events: the response, one event's text, and an error inside a stream turned
into a last event (the status line has gone by then)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from flask import Response, stream_with_context

from server.errors import describe

# (status, code, message) -> the event that reports the error in this stream's dialect.
ErrorEvent = Callable[[int, str, str], str]


def format_event(data: object, kind: str | None = None) -> str:
    """One event: `event: kind` (when named) and its data as JSON."""
    head = f"event: {kind}\n" if kind else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def sse_response(events: Iterator[str], error_event: ErrorEvent) -> Response:
    """A streamed text/event-stream response; an exception while streaming ends the stream
    with `error_event` (unknown errors are logged and reported generically)."""

    def guarded() -> Iterator[str]:
        try:
            yield from events
        except Exception as error:  # the stream has started: report the error as an event
            yield error_event(*describe(error))

    return Response(
        stream_with_context(guarded()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
