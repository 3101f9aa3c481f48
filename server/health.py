"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the models are loaded
and the store answers), for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from server.current import services

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
