"""Liveness: answers without touching a model or the store."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> Response:
    """The process is up and serving."""
    return jsonify({"status": "ok"})
