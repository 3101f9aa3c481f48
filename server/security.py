"""What every request gets: an id, an access-log line, safe headers, proxies and CORS as
configured, and the shared rate limiter."""

from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path

from flask import Flask, Response, current_app, g, request

from retrieval.database import Database
from server.logs import tag_log_records
from server.ratelimit import RateLimiter
from server.server_settings import ServerSettings

access_log = logging.getLogger("ragqa.access")
# A caller's (or proxy's) request id is kept when it is a sane token, else one is made.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def protect_api(app: Flask, settings: ServerSettings, limits: Path | Database) -> RateLimiter:
    """Request ids, the access log, proxies and CORS as configured, and safe headers on every
    response; the rate limiter it returns is applied by `server.access` (per key, or per
    address without one), with who may call what."""
    limiter = RateLimiter(settings.rate_limit_per_minute, limits)
    tag_log_records()
    if settings.trusted_proxies:  # the client's address as the last trusted proxy saw it
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    if settings.cors_origins:  # off unless the operator names the origins
        from flask_cors import CORS

        shared = {"origins": settings.cors_origins}
        CORS(app, resources={r"/api/*": shared, r"/v1/*": shared},
             allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
             expose_headers=["X-Request-Id", "Retry-After"], max_age=600)  # fmt: skip

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.started = time.monotonic()

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        # One access line per request: never the query string, body or headers (secrets).
        took_ms = (time.monotonic() - g.get("started", time.monotonic())) * 1000
        access_log.info("%s %s %d %.0f ms", request.method, request.path,
                        response.status_code, took_ms)  # fmt: skip
        counted = current_app.extensions.get("ragqa.metrics")
        if counted is not None:  # the endpoint, not the path: bounded label values
            counted.request(request.endpoint or "unmatched", request.method,
                            response.status_code, took_ms / 1000)  # fmt: skip
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"
        )
        return response

    return limiter
