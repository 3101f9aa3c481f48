"""Answers and what their users said of them, in SQLite under RAGQA_HOME (or the database
several servers share).

Every answer is recorded with its question, sources, mode and adapter, so a rating that comes
later (thumbs up or down, an optional correction) has everything a training record needs.
Answers nobody rated are forgotten after `keep_unrated_days`; rated ones are kept. Each thread
has its own connection, so the server's threads (and other processes) can share the store;
WAL and full sync make a recorded rating survive a crash.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from generation.types import Answer
from retrieval.database import Connection, Database, Tables, open_database

RATINGS = ("up", "down")
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS answers (
    answer_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    question TEXT NOT NULL,
    standalone_question TEXT,
    answer TEXT NOT NULL,
    mode TEXT NOT NULL,
    template TEXT NOT NULL,
    collection TEXT,
    adapter TEXT,
    refused INTEGER NOT NULL,
    refusal_reason TEXT,
    sources TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS feedback (
    answer_id TEXT PRIMARY KEY REFERENCES answers(answer_id),
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    correction TEXT,
    comment TEXT,
    rated REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS answers_created ON answers(created)",
)
_COLUMNS = (
    "a.answer_id, a.created, a.question, a.standalone_question, a.answer, a.mode, a.template, "
    "a.collection, a.adapter, a.refused, a.refusal_reason, a.sources, "
    "f.rating, f.correction, f.comment, f.rated"
)


class UnknownAnswerError(LookupError):
    """No recorded answer has this id (never given, or forgotten unrated)."""


class InvalidFeedbackError(ValueError):
    """A rating other than up or down."""


@dataclass(frozen=True)
class Rated:
    """A recorded answer and the feedback on it (rating None: not rated yet)."""

    answer_id: str
    created: float
    question: str
    standalone_question: str | None
    answer: str
    mode: str
    template: str
    collection: str | None
    adapter: str | None
    refused: bool
    refusal_reason: str | None
    sources: list[dict[str, Any]]
    rating: str | None = None
    correction: str | None = None
    comment: str | None = None
    rated: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `ragqa feedback export` (one line each)."""
        return asdict(self)


class FeedbackStore:
    """Recorded answers and their ratings (the tables are created on first use)."""

    def __init__(self, place: Path | Database, *, keep_unrated_days: float = 30.0) -> None:
        """`place`: a SQLite file, or the database several servers share."""
        # Where it lives, for a dataset's card (never the database URL: it may hold a password).
        self.where = str(place) if isinstance(place, Path) else "the shared database"
        # FULL sync: a rating acknowledged is a rating kept, even through a power cut.
        self._db = Tables(open_database(place, synchronous="FULL"), _SCHEMA)
        self._keep_s = keep_unrated_days * 86400
        self._pruned = 0.0

    def _connect(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        return self._db.transaction(write=write)

    def record(self, answer: Answer, *, collection: str | None, adapter: str | None = None) -> str:
        """Store an answer as it was shown; return its new answer_id."""
        answer_id = uuid.uuid4().hex
        sources = [
            {"n": c.n, "source": c.source, "page": c.page, "start": c.start,
             "chunk_id": c.chunk_id, "text": c.text}
            for c in answer.citations
        ]  # fmt: skip
        now = time.time()
        with self._connect(write=True) as db:
            db.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (answer_id, now, answer.question, answer.standalone_question, answer.text,
                 answer.mode, answer.template, collection, adapter, int(answer.refused),
                 answer.refusal_reason, json.dumps(sources)),
            )  # fmt: skip
        if now - self._pruned > 3600:  # hourly is enough to bound the file
            self._pruned = now
            self.prune(now)
        return answer_id

    def rate(
        self, answer_id: str, rating: str, *, correction: str | None = None,
        comment: str | None = None,
    ) -> Rated:  # fmt: skip
        """Record (or replace) the feedback on an answer; return the answer with it."""
        if rating not in RATINGS:
            raise InvalidFeedbackError(f"rating must be 'up' or 'down', not {rating!r}.")
        with self._connect(write=True) as db:
            if (
                db.execute("SELECT 1 FROM answers WHERE answer_id = ?", (answer_id,)).fetchone()
                is None
            ):
                raise UnknownAnswerError(_unknown(answer_id))
            db.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?) ON CONFLICT(answer_id) DO UPDATE SET "
                "rating = excluded.rating, correction = excluded.correction, "
                "comment = excluded.comment, rated = excluded.rated",
                (answer_id, rating, correction or None, comment or None, time.time()),
            )
        return self.get(answer_id)

    def get(self, answer_id: str) -> Rated:
        """One recorded answer with its feedback."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM answers a LEFT JOIN feedback f USING (answer_id) "
                "WHERE a.answer_id = ?",
                (answer_id,),
            ).fetchone()
        if row is None:
            raise UnknownAnswerError(_unknown(answer_id))
        return _rated(row)

    def rated(self, *, rating: str | None = None, limit: int | None = None) -> list[Rated]:
        """The answers that have feedback (of one rating, if given), most recently rated first."""
        if rating is not None and rating not in RATINGS:
            raise InvalidFeedbackError(f"rating must be 'up' or 'down', not {rating!r}.")
        query = f"SELECT {_COLUMNS} FROM answers a JOIN feedback f USING (answer_id)"
        arguments: list[Any] = []
        if rating is not None:
            query += " WHERE f.rating = ?"
            arguments.append(rating)
        query += " ORDER BY f.rated DESC, a.answer_id"
        if limit is not None:
            query += " LIMIT ?"
            arguments.append(limit)
        with self._connect() as db:
            return [_rated(row) for row in db.execute(query, arguments).fetchall()]

    def counts(self) -> dict[str, int]:
        """Recorded answers, and ratings up and down."""
        with self._connect() as db:
            answers = db.execute("SELECT count(*) FROM answers").fetchone()[0]
            rows = db.execute("SELECT rating, count(*) FROM feedback GROUP BY rating").fetchall()
        return {"answers": answers, "up": 0, "down": 0} | dict(rows)

    def prune(self, now: float | None = None) -> int:
        """Forget unrated answers older than keep_unrated_days; return how many."""
        cutoff = (time.time() if now is None else now) - self._keep_s
        with self._connect(write=True) as db:
            gone = db.execute(
                "DELETE FROM answers WHERE created < ? AND answer_id NOT IN "
                "(SELECT answer_id FROM feedback)",
                (cutoff,),
            )
            return gone.rowcount


def _unknown(answer_id: str) -> str:
    return (
        f"No answer has the id {answer_id!r}: use the answer_id of a response of /api/chat "
        "(answers nobody rated are kept for RAGQA_FEEDBACK__KEEP_UNRATED_DAYS)."
    )


def _rated(row: tuple[Any, ...]) -> Rated:
    (answer_id, created, question, standalone, answer, mode, template, collection, adapter,
     refused, reason, sources, rating, correction, comment, rated) = row  # fmt: skip
    return Rated(
        answer_id,
        created,
        question,
        standalone,
        answer,
        mode,
        template,
        collection,
        adapter,
        bool(refused),
        reason,
        json.loads(sources),
        rating,
        correction,
        comment,
        rated,
    )
