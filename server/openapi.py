"""`GET /openapi.json`: the API contract, built from the app's own routes, the pydantic models
that validate request bodies (`server.bodies`) and those that describe responses
(`server.schemas`), and each route's access rule (`server.access.RULES`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from server import schemas
from server.access import PUBLIC, RULES
from server.bodies import ChatBody, CompareBody, CompletionBody, FeedbackBody, SearchBody

contract = Blueprint("contract", __name__)


@dataclass(frozen=True)
class Operation:
    """What the contract says about one route."""

    summary: str
    body: type[BaseModel] | None = None  # a JSON body
    ok: type[BaseModel] | str | None = None  # a model, or a media type for other content
    status: int = 200
    more: dict[int, type[BaseModel]] = field(default_factory=dict)  # other success answers
    streams: bool = False  # text/event-stream when asked (a "stream": true body)
    query: tuple[tuple[str, bool, str], ...] = ()  # (name, required, description)
    multipart: bool = False


OPERATIONS: dict[str, Operation] = {
    "web.index": Operation("The chat page", ok="text/html"),
    "static": Operation("The chat page's scripts and styles", ok="application/octet-stream"),
    "contract.openapi": Operation("This contract (OpenAPI 3.1)", ok="application/json"),
    "health.healthz": Operation("Liveness: the process answers", ok=schemas.Health),
    "health.readyz": Operation(
        "Readiness: models loaded, store reachable (503 until then)",
        ok=schemas.Readiness,
        more={503: schemas.Readiness},
    ),
    "health.prometheus_metrics": Operation("Prometheus metrics", ok="text/plain"),
    "chat.chat": Operation(
        "Ask a question: an answer with citations (streamed on request)",
        body=ChatBody,
        ok=schemas.AnswerOut,
        streams=True,
    ),
    "search.search": Operation(
        "What retrieval finds for a query, with scores (no model answer)",
        body=SearchBody,
        ok=schemas.SearchOut,
    ),
    "compare.compare": Operation(
        "One question answered in several modes, side by side",
        body=CompareBody,
        ok=schemas.CompareOut,
    ),
    "feedback.feedback": Operation(
        "Rate an answer (up or down), with an optional correction",
        body=FeedbackBody,
        ok=schemas.FeedbackOut,
        status=201,
    ),
    "openai.models": Operation("The models /v1 serves (OpenAI API)", ok=schemas.ModelsOut),
    "openai.chat_completions": Operation(
        "A chat completion (OpenAI API); model ragqa[@adapter][:collection] answers from the "
        "documents",
        body=CompletionBody,
        ok=schemas.CompletionOut,
        streams=True,
    ),
    "documents.list_collections": Operation(
        "The collections this key may use", ok=schemas.CollectionsOut
    ),
    "documents.delete_collection": Operation(
        "Delete a collection and everything in it", ok=schemas.Deleted
    ),
    "documents.list_documents": Operation("A collection's documents", ok=schemas.DocumentsOut),
    "documents.upload_documents": Operation(
        "Upload files (multipart) and ingest them; ?wait=false answers 202 with a job to poll",
        ok=schemas.UploadOut,
        more={202: schemas.JobStarted},
        multipart=True,
        query=(("wait", False, "false: answer at once with a job to poll"),),
    ),
    "documents.delete_document_by_source": Operation(
        "Delete a document by its source as listed",
        ok=schemas.Deleted,
        query=(("source", True, "The document's source, as GET documents lists it"),),
    ),
    "documents.delete_uploaded_document": Operation(
        "Delete an uploaded document by file name", ok=schemas.Deleted
    ),
    "documents.job_status": Operation(
        "An ingest job's progress, and its report when done", ok=schemas.JobOut
    ),
}
_ERRORS = {
    400: "Bad request: the message says what to fix",
    401: "No valid API key",
    403: "The key may not do this, or not in this collection",
    404: "No such collection, document, job or answer",
    413: "Too large",
    429: "Over the rate limit: see Retry-After",
    503: "The model or the store is busy, not loaded or not answering: see Retry-After",
    507: "The disk under the store is full: nothing was published",
}
# One server-sent event: /api/chat sends retrieval, token... and answer (an AnswerOut), or
# error; /v1 sends chat.completion.chunk objects, then [DONE].
_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["retrieval", "token", "answer", "error"]},
        "data": {"type": "string", "description": "JSON"},
    },
}
_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


Refs = dict[tuple[type[BaseModel], str], dict[str, Any]]


def _operation(endpoint: str, rule: str, spec: Operation, refs: Refs) -> dict[str, Any]:
    access = RULES[endpoint].permission

    def _ref(model: type[BaseModel]) -> dict[str, Any]:
        return refs[(model, "validation" if model is spec.body else "serialization")]

    answer: dict[str, Any] = (
        _json(_ref(spec.ok)) if isinstance(spec.ok, type) else {str(spec.ok): {"schema": {}}}
    )
    if spec.streams:
        answer["text/event-stream"] = {"schema": _EVENT}
    responses: dict[str, Any] = {str(spec.status): {"description": "OK", "content": answer}}
    for status, model in spec.more.items():
        responses[str(status)] = {"description": model.__doc__ or "", "content": _json(_ref(model))}
    errors = [404, 503] if access == PUBLIC else list(_ERRORS)
    for status in errors:
        responses.setdefault(
            str(status), {"description": _ERRORS[status], "content": _json(_ref(schemas.ErrorOut))}
        )
    operation: dict[str, Any] = {
        "operationId": endpoint.replace(".", "_"),
        "summary": spec.summary,
        "description": f"Access: {access}.",
        "responses": responses,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(rule)
        ]
        + [
            {
                "name": name,
                "in": "query",
                "required": required,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, required, text in spec.query
        ],
    }
    if access == PUBLIC:
        operation["security"] = []
    if spec.body is not None:
        operation["requestBody"] = {"required": True, "content": _json(_ref(spec.body))}
    elif spec.multipart:
        files = {"type": "array", "items": {"type": "string", "format": "binary"}}
        operation["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"files": files},
                        "required": ["files"],
                    }
                }
            },
        }
    return operation


def build_openapi(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `app`: every route (a route without an entry here raises,
    so a new route is described or fails the tests)."""
    models = [spec.body for spec in OPERATIONS.values() if spec.body is not None]
    answers = {
        m
        for spec in OPERATIONS.values()
        for m in (spec.ok, *spec.more.values())
        if isinstance(m, type)
    } | {schemas.ErrorOut}
    refs, definitions = models_json_schema(
        [(m, "validation") for m in models]
        + [(m, "serialization") for m in sorted(answers, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        path = _PARAM.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method.lower() in paths.get(path, {}):
                continue  # the same path under two names (Flask's static and the page's)
            spec = OPERATIONS[rule.endpoint]
            paths.setdefault(path, {})[method.lower()] = _operation(
                rule.endpoint,
                rule.rule,
                spec,
                refs,  # type: ignore[arg-type]
            )
    try:
        release = version("ragqa")
    except PackageNotFoundError:
        release = "0"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ragqa",
            "version": release,
            "description": "Grounded answers with citations from your documents. "
            "See docs/http-api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


@contract.get("/openapi.json")
def openapi() -> Response:
    """The contract; public, as it describes routes and holds no data."""
    built = current_app.extensions.get("ragqa.openapi")
    if built is None:
        built = current_app.extensions["ragqa.openapi"] = build_openapi(current_app)
    return jsonify(built)
