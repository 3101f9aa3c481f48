"""Domain errors to HTTP status codes and a JSON body {"error": {"code", "message"}}."""

from __future__ import annotations

import logging

import httpx
import psycopg
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from finetune.adapters import AdapterError, AdapterNotFoundError
from finetune.feedback import InvalidFeedbackError, UnknownAnswerError
from finetune.records import DatasetError
from finetune.training import TrainingError
from generation.conversation import InvalidHistoryError
from generation.generator import AdapterUnavailableError, GeneratorLoadError, PromptTooLongError
from generation.prompts import TemplateError
from generation.rag import InvalidQuestionError
from retrieval.catalog import DocumentNotFoundError
from retrieval.chroma import (
    CollectionNotFoundError,
    EmbedderMismatchError,
    InvalidCollectionNameError,
)
from retrieval.disk import StoreFullError
from retrieval.embedder import EmbedderLoadError
from retrieval.filters import InvalidFilterError
from retrieval.home_store import StoreBusyError
from retrieval.model_thread import ModelBusyError
from retrieval.recovery import DamagedIndexError
from retrieval.retriever import InvalidSearchError
from server.jobs import JobNotFoundError
from server.keys import ForbiddenError
from server.packaged import ModelNotInstalledError

logger = logging.getLogger(__name__)


class BadRequestError(ValueError):
    """A request body that does not have the documented shape."""


# (exception type, HTTP status, error code); the first match wins.
ERROR_MAP: tuple[tuple[type[Exception], int, str], ...] = (
    (BadRequestError, 400, "bad_request"),
    (ForbiddenError, 403, "forbidden"),
    (InvalidQuestionError, 400, "invalid_question"),
    (InvalidHistoryError, 400, "invalid_history"),
    (TemplateError, 400, "invalid_template"),
    (InvalidCollectionNameError, 400, "invalid_collection_name"),
    (InvalidFilterError, 400, "invalid_filter"),
    (InvalidSearchError, 400, "invalid_search"),
    (InvalidFeedbackError, 400, "invalid_feedback"),
    (DatasetError, 400, "invalid_dataset"),
    (TrainingError, 400, "invalid_training"),
    (AdapterNotFoundError, 404, "adapter_not_found"),
    (AdapterError, 400, "invalid_adapter"),
    (AdapterUnavailableError, 400, "adapter_unavailable"),
    (PromptTooLongError, 413, "prompt_too_long"),
    (CollectionNotFoundError, 404, "collection_not_found"),
    (DocumentNotFoundError, 404, "document_not_found"),
    (JobNotFoundError, 404, "job_not_found"),
    (UnknownAnswerError, 404, "answer_not_found"),
    (EmbedderMismatchError, 409, "embedder_mismatch"),
    (ModelNotInstalledError, 503, "model_not_installed"),
    (EmbedderLoadError, 503, "model_unavailable"),
    (GeneratorLoadError, 503, "model_unavailable"),
    (ModelBusyError, 503, "busy"),
    (DamagedIndexError, 503, "index_damaged"),
    (StoreBusyError, 503, "store_busy"),
    (StoreFullError, 507, "disk_full"),
    # The Chroma server does not answer (down, restarting): fail fast, the client retries.
    (httpx.TransportError, 503, "store_unavailable"),
    # The shared PostgreSQL database (RAGQA_DATABASE__URL) does not answer.
    (psycopg.OperationalError, 503, "database_unavailable"),
)
# 503s that a moment's wait usually cures, answered with Retry-After.
RETRY_LATER = (ModelBusyError, StoreBusyError, httpx.TransportError, psycopg.OperationalError)
STORE_DOWN = (
    "The document store is not answering (the Chroma server is down or restarting); retry shortly."
)
DATABASE_DOWN = "The shared database is not answering (down or restarting); retry shortly."


BUSY_RETRY_AFTER_S = 5


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    """The JSON error body every endpoint uses."""
    return jsonify({"error": {"code": code, "message": message}}), status


def classify(error: Exception) -> tuple[int, str] | None:
    """The (status, code) of a known domain error, or None."""
    for kind, status, code in ERROR_MAP:
        if isinstance(error, kind):
            if isinstance(error, CollectionNotFoundError) and error.empty:
                return status, "collection_empty"
            return status, code
    return None


def describe(error: Exception) -> tuple[int, str, str]:
    """(status, code, message) of any error. An unknown one is logged with its traceback and
    described generically, so internals never reach a client."""
    known = classify(error)
    if known is not None and isinstance(error, httpx.TransportError):
        logger.warning("the Chroma server does not answer: %r", error)
        return known[0], known[1], STORE_DOWN
    if known is not None and isinstance(error, psycopg.OperationalError):
        # Its message may name the database's address: the log gets the kind, not the text.
        logger.warning("the shared database does not answer: %s", type(error).__name__)
        return known[0], known[1], DATABASE_DOWN
    if known is not None:
        return known[0], known[1], str(error)
    logger.error("unhandled error", exc_info=error)
    return 500, "internal_error", "Internal error; see the server log."


def register_error_handlers(app: Flask) -> None:
    """JSON for every error; unknown ones are logged with traceback and answered generically."""

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[Response, int]:
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, code, error.description or str(error))

    @app.errorhandler(Exception)
    def _any(error: Exception) -> tuple[Response, int]:
        response, status = error_response(*describe(error))
        if isinstance(error, RETRY_LATER):  # a moment's wait usually cures these
            response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
        return response, status
