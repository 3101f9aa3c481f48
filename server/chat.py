"""POST /api/chat: a question in, an answer with citations out."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from werkzeug.exceptions import RequestEntityTooLarge

from generation.prompts import Example
from generation.rag import Event, Request
from retrieval.filters import SearchFilter
from server.errors import BadRequestError, classify
from server.wiring import Services

logger = logging.getLogger(__name__)

chat_api = Blueprint("chat", __name__, url_prefix="/api")


def services() -> Services:
    """The app's Services."""
    found: Services = current_app.extensions["ragqa"]
    return found


def _string_field(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequestError(f"Missing field {name!r}.")
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"Field {name!r} must be a string.")
    return value


def json_body(hint: str) -> dict[str, Any]:
    """The request's JSON object, within the size limit; `hint` says what to send instead."""
    limit = services().settings.server.max_request_bytes
    if (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"The request is larger than {limit} bytes.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequestError(hint)
    return body


@chat_api.post("/chat")
def chat() -> Response:
    """Body: {"question", "collection"?, "mode"?, "template"?, "history"?, "examples"?,
    "strict"?, "retrieval_mode"?, "filters"?, "stream"?}. With "stream": true or
    Accept: text/event-stream, the answer comes as server-sent events."""
    body = json_body('Send a JSON object such as {"question": "What is ragqa?"}.')
    asked = _rag_request(body)
    wants_stream = body.get("stream") is True or (
        request.accept_mimetypes.best == "text/event-stream"
    )
    if not wants_stream:
        return jsonify(services().rag.answer(asked).to_dict())
    events = services().rag.stream(asked)
    first = next(events)  # runs validation and retrieval now: errors are plain JSON errors
    return Response(
        stream_with_context(_sse(first, events)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _rag_request(body: dict[str, Any]) -> Request:
    """The Rag request a chat body describes, checked field by field."""
    question = _string_field(body, "question", required=True) or ""
    settings = services().settings
    strict = body.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise BadRequestError('"strict" must be true or false.')
    return Request(
        question=question,
        collection=_string_field(body, "collection", required=False) or settings.collection,
        mode=_string_field(body, "mode", required=False) or "rag",
        template=_string_field(body, "template", required=False),
        search=_search_options(body),
        history=body.get("history") or [],
        examples=_examples(body.get("examples")),
        strict=strict,
    )


def _examples(raw: object) -> list[Example] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) > 20:
        raise BadRequestError('"examples" must be a list of at most 20 {"question", "answer"}.')
    examples = []
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("question"), str)
                and isinstance(item.get("answer"), str)
                and isinstance(item.get("context", ""), str)):  # fmt: skip
            raise BadRequestError(
                'Each example must be {"question": str, "answer": str, "context"?: str}.'
            )
        examples.append(Example(item["question"], item["answer"], item.get("context", "")))
    return examples


def _sse(first: Event, rest: Iterator[Event]) -> Iterator[str]:
    """Server-sent events: retrieval, token..., answer; an error event if generation fails."""
    yield _event(first)
    try:
        for event in rest:
            yield _event(event)
    except Exception as error:  # the stream has started: report the error as an event
        known = classify(error)
        if known is None:
            logger.exception("error while streaming an answer")
        status, code = known or (500, "internal_error")
        message = str(error) if known else "Internal error; see the server log."
        yield _format("error", {"error": {"code": code, "message": message, "status": status}})


def _event(event: Event) -> str:
    data = event.data.to_dict() if event.kind == "answer" else (
        {"text": event.data} if event.kind == "token" else event.data
    )  # fmt: skip
    return _format(event.kind, data)


def _format(kind: str, data: object) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _search_options(body: dict[str, Any]) -> dict[str, Any]:
    """Retrieval options of a request: "retrieval_mode" and "filters"."""
    filters = body.get("filters")
    if filters is not None and not isinstance(filters, dict):
        raise BadRequestError('"filters" must be an object, e.g. {"source": "/docs/a.pdf"}')
    where = SearchFilter.parse(filters)
    return {
        "mode": _string_field(body, "retrieval_mode", required=False),
        "where": None if where.empty else where,
    }


@chat_api.post("/search")
def search() -> Response:
    """Retrieval only. Body: {"query", "collection"?, "k"?, "retrieval_mode"?, "filters"?}."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequestError('Send a JSON object such as {"query": "install"}.')
    query = (_string_field(body, "query", required=True) or "").strip()
    if not query:
        raise BadRequestError("The query is empty.")
    k = body.get("k", None)
    if k is not None and (not isinstance(k, int) or isinstance(k, bool)):
        raise BadRequestError('"k" must be a whole number.')
    app_services = services()
    collection = (
        _string_field(body, "collection", required=False) or app_services.settings.collection
    )
    options = _search_options(body)
    hits = app_services.retriever.search(
        query, collection=collection, k=k, mode=options["mode"], where=options["where"]
    )
    return jsonify({"query": query, "collection": collection, "hits": [h.to_dict() for h in hits]})
