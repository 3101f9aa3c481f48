"""POST /api/chat: a question in, an answer with citations out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from retrieval.filters import SearchFilter
from server.errors import BadRequestError
from server.wiring import Services

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


@chat_api.post("/chat")
def chat() -> Response:
    """Body: {"question": str, "collection"?: str, "mode"?: "rag"}."""
    limit = services().settings.server.max_request_bytes
    if (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"The request is larger than {limit} bytes.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequestError('Send a JSON object such as {"question": "What is ragqa?"}.')
    question = _string_field(body, "question", required=True) or ""
    app_services = services()
    collection = (
        _string_field(body, "collection", required=False) or app_services.settings.collection
    )
    mode = _string_field(body, "mode", required=False) or "rag"
    answer = app_services.rag.answer(
        question, collection=collection, mode=mode, search=_search_options(body)
    )
    return jsonify(answer.to_dict())


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
