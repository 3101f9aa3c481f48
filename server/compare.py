"""POST /api/compare: one question answered in several modes, side by side."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from generation.rag import Request
from generation.types import USES_ADAPTER
from server.bodies import CompareBody, read_body
from server.current import services
from server.feedback import recorded

compare_api = Blueprint("compare", __name__, url_prefix="/api")


@compare_api.post("/compare")
def compare() -> Response:
    """Body: {"question", "collection"?, "modes"? (default: every mode without an adapter),
    "adapter"?}. Each mode's answer as /api/chat gives it (each with its answer_id), in the
    order asked; the modes run one after another on the one model."""
    body = read_body(CompareBody, 'Send a JSON object such as {"question": "What is ragqa?"}.')
    found = services()
    where = body.collection or found.settings.collection
    answers = {}
    for mode in dict.fromkeys(body.modes):
        adapter = body.adapter if mode in USES_ADAPTER else None
        answer = found.rag.answer(Request(body.question, where, mode=mode, adapter=adapter))
        answers[mode] = recorded(found, answer, where).to_dict()
    return jsonify({"question": body.question, "collection": where, "answers": answers})
