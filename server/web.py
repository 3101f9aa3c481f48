"""The chat page."""

from __future__ import annotations

from html import escape
from pathlib import Path

from flask import Blueprint, Response

from ingest.formats import FORMATS
from server.current import services

web = Blueprint("web", __name__, static_folder="static", static_url_path="/static")
PAGE = Path(__file__).resolve().parent / "static" / "index.html"


@web.get("/")
def index() -> Response:
    """The single-page chat client; its upload box accepts the file types ragqa reads and
    adds them to the default collection unless another is named."""
    page = PAGE.read_text(encoding="utf-8")
    page = page.replace("{{ accept }}", escape(",".join(sorted(FORMATS))))
    page = page.replace("{{ collection }}", escape(services().settings.collection))
    return Response(page, mimetype="text/html")
