"""The chat page."""

from __future__ import annotations

from flask import Blueprint, Response

web = Blueprint("web", __name__, static_folder="static", static_url_path="/static")


@web.get("/")
def index() -> Response:
    """The single-page chat client."""
    return web.send_static_file("index.html")
