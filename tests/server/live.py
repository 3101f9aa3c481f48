"""The real app on a real socket, for tests that speak HTTP to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server

from server.app import create_app
from server.wiring import Services


@contextmanager
def serve(services: Services) -> Iterator[str]:
    """The app of `services` served from a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, create_app(services.settings, services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
