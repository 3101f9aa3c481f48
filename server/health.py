"""Liveness (`/healthz`: the process answers), readiness (`/readyz`: the models are loaded and
the store answers), for load balancers and orchestrators, and `/metrics` for Prometheus."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from server.current import metrics, services

health = Blueprint("health", __name__)
logger = logging.getLogger(__name__)
RETRY_AFTER_S = 5


@health.get("/healthz")
def healthz() -> Response:
    """The process is up and serving (touches no model and no store)."""
    return jsonify({"status": "ok"})


@health.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when every model is loaded and the store answers; 503 (with Retry-After) while
    the models load, when loading failed, or when the store cannot be reached."""
    found = services()
    body: dict[str, object] = {"status": "ready", "models": "loaded", "store": "reachable"}
    if not found.ready.is_set():
        body["models"] = f"failed: {found.warm_up_error}" if found.warm_up_error else "loading"
    else:
        try:
            found.index.list_collections()
        except Exception as error:  # a Chroma server that is down, a store gone
            logger.warning("readiness: the store does not answer: %s", error)
            body["store"] = f"unreachable: {type(error).__name__}"
    ready = body["models"] == "loaded" and body["store"] == "reachable"
    if ready:
        return jsonify(body), 200
    response = jsonify({**body, "status": "not_ready"})
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response, 503


@health.get("/metrics")
def prometheus_metrics() -> Response:
    """Every metric in Prometheus' text format (admin keys: see server.access)."""
    body, content_type = metrics().exposition(services().model_thread.occupied)
    return Response(body, content_type=content_type)
