"""The collaborators of the app that serves the current request."""

from __future__ import annotations

from flask import current_app

from server.jobs import JobRegistry
from server.metrics import Metrics
from server.wiring import Services


def services() -> Services:
    """The app's Services."""
    found: Services = current_app.extensions["ragqa"]
    return found


def jobs() -> JobRegistry:
    """The app's background ingest jobs."""
    found: JobRegistry = current_app.extensions["ragqa.jobs"]
    return found


def metrics() -> Metrics:
    """The app's Prometheus metrics."""
    found: Metrics = current_app.extensions["ragqa.metrics"]
    return found
