"""Run the app under gunicorn from `ragqa serve` (the production server, not Flask's)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from server.app import create_app, start_warm_up
from server.wiring import Services


class _Application(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, services: Services, options: dict[str, Any]) -> None:
        self._services = services
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in the worker process, so the models load (and warm up) where they are used.
        app = create_app(self._services.settings, self._services)
        if self._services.settings.server.warm_up:
            start_warm_up(self._services)
        return app


def gunicorn_options(
    services: Services, *, host: str, port: int, threads: int, workers: int = 1
) -> dict[str, Any]:
    """gunicorn's settings. One worker by default: the model is loaded once per process."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 300,  # the first request may convert and load the model
        # SIGTERM: stop accepting, let the answers in flight finish for this long, then exit.
        "graceful_timeout": services.settings.server.shutdown_grace_s,
        "accesslog": None,  # ragqa.access logs each request, with its id and no query string
        "errorlog": "-",
        "loglevel": "info",
    }


def run_gunicorn(
    services: Services, *, host: str, port: int, threads: int, workers: int = 1
) -> None:
    """Serve until interrupted (SIGTERM: gracefully, see `gunicorn_options`)."""
    options = gunicorn_options(services, host=host, port=port, threads=threads, workers=workers)
    _Application(services, options).run()
