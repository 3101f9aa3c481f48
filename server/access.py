"""Who may call which route: every route's rule in one table (`RULES`), checked before the
route runs.

A rule names the permission the route needs (public, read, write, admin: see
`server.keys.PERMISSIONS`) and where the request names its collection, so a key limited to
some collections gets 403 for any other. Routes whose collection is known only inside them
(a job, a rated answer) or that list collections check with `require_collection` and
`current_key().sees` themselves. A route missing from the table is refused: a new route
states its rule here or cannot be called.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, g, request

from server.current import services
from server.errors import error_response
from server.keys import ADMIN, OPEN, ApiKey, ForbiddenError, KeyStore
from server.ratelimit import RateLimiter
from server.server_settings import ServerSettings

PUBLIC, READ, WRITE, MANAGE = "public", "read", "write", "admin"


@dataclass(frozen=True)
class Rule:
    """The permission a route needs, and how to find the collection the request is about
    (None: none, or the route checks it)."""

    permission: str
    collection: Callable[[], str | None] | None = None


def _url_collection() -> str | None:
    return str((request.view_args or {}).get("name", "")) or None


def _body_collection() -> str | None:
    body = request.get_json(silent=True)
    named = body.get("collection") if isinstance(body, dict) else None
    return named if isinstance(named, str) and named else services().settings.collection


def _model_collection() -> str | None:
    """/v1 names its collection in the model: ragqa[@adapter][:collection]; other models
    (the bare generator) read no collection."""
    body = request.get_json(silent=True)
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model.startswith("ragqa"):
        return None
    return model.partition(":")[2] or services().settings.collection


RULES: dict[str, Rule] = {
    "web.index": Rule(PUBLIC),
    "static": Rule(PUBLIC),
    "web.static": Rule(PUBLIC),
    "health.healthz": Rule(PUBLIC),
    "health.readyz": Rule(PUBLIC),
    "contract.openapi": Rule(PUBLIC),  # describes the routes, holds no data
    "health.prometheus_metrics": Rule(MANAGE),  # operators' numbers, no document text
    "chat.chat": Rule(READ, _body_collection),
    "search.search": Rule(READ, _body_collection),
    "compare.compare": Rule(READ, _body_collection),
    "openai.chat_completions": Rule(READ, _model_collection),
    "openai.models": Rule(READ),  # lists the caller's collections only
    "documents.list_collections": Rule(READ),  # the caller's collections only
    "documents.list_documents": Rule(READ, _url_collection),
    "documents.job_status": Rule(READ),  # the job's collection, checked by the route
    "feedback.feedback": Rule(READ),  # the rated answer's collection, checked by the route
    "documents.upload_documents": Rule(WRITE, _url_collection),
    "documents.delete_document_by_source": Rule(WRITE, _url_collection),
    "documents.delete_uploaded_document": Rule(WRITE, _url_collection),
    "documents.delete_collection": Rule(MANAGE, _url_collection),
}


def current_key() -> ApiKey:
    """The key of the request being served (everyone is admin when no key is required)."""
    key: ApiKey = g.get("api_key", OPEN)
    return key


def require_collection(collection: str | None) -> None:
    """Raise ForbiddenError unless the caller's key may use `collection`."""
    if collection and not current_key().sees(collection):
        raise ForbiddenError(f"This key may not use collection {collection!r}.")


def guard_routes(
    app: Flask, settings: ServerSettings, keys: KeyStore, limiter: RateLimiter
) -> None:
    """Before every request: identify the caller, count it against its rate limit (its key's,
    or its address's without a valid key, so guessing keys is limited too), then apply the
    route's rule."""
    bootstrap = settings.api_key.get_secret_value() if settings.api_key else None

    def identify() -> ApiKey | None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if bootstrap is not None and hmac.compare_digest(given.encode(), bootstrap.encode()):
            return ADMIN
        found = keys.verify(given) if given else None
        if found is not None:
            return found
        return OPEN if bootstrap is None and not keys.required() else None

    def refusal(rule: Rule) -> tuple[int, str, str] | None:
        """Why the request may not run: (status, code, message), or None."""
        if rule.permission == PUBLIC:
            return None
        key = identify()
        who = (
            f"key:{key.id}"
            if key is not None and key is not OPEN
            else (f"address:{request.remote_addr or 'unknown'}")
        )
        if not limiter.allow(who):
            g.retry_after = limiter.retry_after(who)
            per = "key" if who.startswith("key:") else "address"
            return (
                429,
                "rate_limited",
                (
                    f"More than {settings.rate_limit_per_minute} requests in a minute from this "
                    f"{per}; slow down (RAGQA_SERVER__RATE_LIMIT_PER_MINUTE)."
                ),
            )
        if key is None:
            return 401, "unauthorized", "Send an API key as 'Authorization: Bearer <key>'."
        g.api_key = key
        if not key.may(rule.permission):
            return (
                403,
                "forbidden",
                f"A {key.role} key may not do this (it needs {rule.permission}).",
            )
        collection = rule.collection() if rule.collection else None
        if collection and not key.sees(collection):
            return 403, "forbidden", f"This key may not use collection {collection!r}."
        return None

    @app.before_request
    def _authorize() -> tuple[Response, int] | None:
        if request.endpoint is None or request.method == "OPTIONS":
            return None  # no such route (Flask answers 404 or 405), or a CORS preflight
        rule = RULES.get(request.endpoint)
        found = (
            (403, "forbidden", "This route has no access rule.") if rule is None else refusal(rule)
        )
        if not found:
            return None
        response, status = error_response(*found)
        if status == 429:
            response.headers["Retry-After"] = str(g.retry_after)
        return response, status
