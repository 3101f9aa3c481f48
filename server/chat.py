"""POST /api/chat: a question in, an answer with citations out (or streamed as events)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request

from generation.prompts import Example
from generation.rag import Event, Request
from server.bodies import ChatBody, read_body, search_options
from server.current import services
from server.feedback import recorded
from server.sse import format_event, sse_response
from server.wiring import Services

chat_api = Blueprint("chat", __name__, url_prefix="/api")


@chat_api.post("/chat")
def chat() -> Response:
    """Body: {"question", "collection"?, "mode"?, "template"?, "history"?, "examples"?,
    "strict"?, "retrieval_mode"?, "filters"?, "stream"?}. With "stream": true or
    Accept: text/event-stream, the answer comes as server-sent events."""
    body = read_body(ChatBody, 'Send a JSON object such as {"question": "What is ragqa?"}.')
    asked = _rag_request(body)
    if not (body.stream or request.accept_mimetypes.best == "text/event-stream"):
        return jsonify(
            recorded(services(), services().rag.answer(asked), asked.collection).to_dict()
        )
    events = services().rag.stream(asked)
    first = next(events)  # runs validation and retrieval now: errors are plain JSON errors
    return sse_response(_events(first, events, services(), asked.collection), _error_event)


def _rag_request(body: ChatBody) -> Request:
    """The Rag request a chat body describes."""
    examples = None
    if body.examples is not None:
        examples = [Example(e.question, e.answer, e.context) for e in body.examples]
    return Request(
        question=body.question,
        collection=body.collection or services().settings.collection,
        mode=body.mode,
        template=body.template,
        search=search_options(body.retrieval_mode, body.filters),
        history=body.history or [],
        examples=examples,
        strict=body.strict,
        adapter=body.adapter,
    )


def _events(
    first: Event, rest: Iterator[Event], found: Services, collection: str | None
) -> Iterator[str]:
    """retrieval, token..., answer (recorded, with its answer_id)."""
    for event in itertools.chain([first], rest):
        data = recorded(found, event.data, collection).to_dict() if event.kind == "answer" else (
            {"text": event.data} if event.kind == "token" else event.data
        )  # fmt: skip
        yield format_event(data, event.kind)


def _error_event(status: int, code: str, message: str) -> str:
    return format_event({"error": {"code": code, "message": message, "status": status}}, "error")
