"""The Flask application factory."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from server.access import guard_routes
from server.chat import chat_api
from server.compare import compare_api
from server.documents import documents_api
from server.errors import register_error_handlers
from server.feedback import feedback_api
from server.health import health
from server.jobs import JobRegistry
from server.metrics import Metrics
from server.openai_api import openai_api
from server.openapi import contract
from server.search import search_api
from server.security import protect_api
from server.settings import Settings
from server.web import web
from server.wiring import Services

logger = logging.getLogger(__name__)


class BoundedJSONProvider(DefaultJSONProvider):
    """JSON whose nesting runs past Python's recursion limit, or whose strings hold an unpaired
    surrogate escape ("\\ud800", which is no character and cannot be stored or encoded), is
    malformed (a 400), not an error deep inside (a 500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            data = super().loads(s, **kwargs)
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            raise ValueError("The JSON is nested too deeply.") from None
        except UnicodeEncodeError:
            raise ValueError(
                "The JSON holds an unpaired surrogate escape (\\ud800-\\udfff)."
            ) from None
        return data


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the app; nothing loads until a request needs it (or warm_up is started)."""
    settings = settings or Settings()
    services = services or Services(settings)
    app = Flask(__name__)
    app.json = BoundedJSONProvider(app)
    # The largest body is an upload; JSON endpoints check their own, smaller limit.
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_upload_bytes
    app.json.sort_keys = False
    app.extensions["ragqa"] = services
    app.extensions["ragqa.jobs"] = JobRegistry(path=services.shared(settings.home / "jobs.sqlite"))
    app.extensions["ragqa.metrics"] = Metrics()
    register_error_handlers(app)
    limiter = protect_api(app, settings.server, services.shared(settings.home / "limits.sqlite"))
    guard_routes(app, settings.server, services.keys, limiter)
    app.register_blueprint(health)
    app.register_blueprint(chat_api)
    app.register_blueprint(compare_api)
    app.register_blueprint(search_api)
    app.register_blueprint(documents_api)
    app.register_blueprint(feedback_api)
    app.register_blueprint(openai_api)
    app.register_blueprint(web)
    app.register_blueprint(contract)
    return app


def start_warm_up(services: Services) -> threading.Thread:
    """Load the models in a background thread so the first question is fast."""

    def _run() -> None:
        try:
            services.warm_up()
            logger.info("models loaded")
        except Exception as error:  # the first request reports the same error to its caller
            services.warm_up_error = f"{type(error).__name__}: {error}"
            logger.exception("warm-up failed")

    thread = threading.Thread(target=_run, name="ragqa-warm-up", daemon=True)
    thread.start()
    return thread
