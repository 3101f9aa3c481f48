"""POST /api/feedback: a user's thumbs up or down on an answer, with an optional correction;
and the recording of answers that makes it possible."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3

from flask import Blueprint, Response, has_app_context, jsonify

from generation.types import Answer
from server.access import require_collection
from server.bodies import FeedbackBody, read_body
from server.current import metrics, services
from server.errors import BadRequestError
from server.wiring import Services

logger = logging.getLogger(__name__)
feedback_api = Blueprint("feedback", __name__, url_prefix="/api")


def recorded(services: Services, answer: Answer, collection: str | None) -> Answer:
    """The answer with the answer_id it is recorded under. Recording off, or failing (a full
    disk), it is the answer without one: the user still gets it, and the log says why. Every
    answer the server gives passes here, so its metrics are counted here too."""
    if has_app_context():  # `ragqa ask` records answers too, with no server to count them
        metrics().answer(answer)
    if not services.settings.feedback.record_answers:
        return answer
    try:
        answer_id = services.feedback.record(answer, collection=collection, adapter=answer.adapter)
    except (sqlite3.Error, OSError):
        logger.exception("could not record the answer for feedback")
        return answer
    return dataclasses.replace(answer, answer_id=answer_id)


@feedback_api.post("/feedback")
def feedback() -> tuple[Response, int]:
    """Body: {"answer_id", "rating": "up"|"down", "correction"?, "comment"?}. A second rating
    of the same answer replaces the first. 201 with the stored record."""
    body = read_body(
        FeedbackBody, 'Send a JSON object such as {"answer_id": "...", "rating": "up"}.'
    )
    longest = services().settings.feedback.max_correction_chars
    for name, text in (("correction", body.correction), ("comment", body.comment)):
        if text is not None and len(text) > longest:
            raise BadRequestError(
                f"{name} is {len(text)} characters; at most {longest} are accepted "
                "(RAGQA_FEEDBACK__MAX_CORRECTION_CHARS)."
            )
    require_collection(services().feedback.get(body.answer_id).collection)
    stored = services().feedback.rate(
        body.answer_id, body.rating, correction=body.correction, comment=body.comment
    )
    metrics().feedback.labels(body.rating).inc()
    return jsonify(stored.to_dict()), 201
