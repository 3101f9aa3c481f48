"""Log records that name their HTTP request, as text or as one JSON object per line."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from flask import g, has_request_context


def request_id() -> str:
    """The id of the request being served ("-" outside a request), for log records."""
    return str(g.get("request_id", "-")) if has_request_context() else "-"


def tag_log_records() -> None:
    """Give every log record a `request_id` attribute (for `%(request_id)s` and JSON logs)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "ragqa", False):
        return

    def tagged(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.request_id = request_id()
        return record

    tagged.ragqa = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(tagged)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request_id, message (and the traceback
    of an exception), for log collectors. Messages are ragqa's own: they never hold keys or
    document text."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def use_json_logs() -> None:
    """Write every log line as JSON (`RAGQA_SERVER__LOG_FORMAT=json`)."""
    tag_log_records()
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
