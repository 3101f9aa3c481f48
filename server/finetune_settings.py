"""Settings of the learning loop: the feedback users give on answers (later: datasets,
training and adapters)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FeedbackSettings(BaseModel):
    """Answers recorded for feedback, in HOME/feedback.sqlite."""

    record_answers: bool = Field(
        default=True,
        description="Record every answer (question, answer, sources, mode) so users can rate "
        "it (`POST /api/feedback`); off, answers carry no `answer_id`.",
    )
    keep_unrated_days: float = Field(
        default=30.0, gt=0,
        description="Recorded answers nobody rated are forgotten after this many days; rated "
        "ones are kept.",
    )  # fmt: skip
    max_correction_chars: int = Field(
        default=4000, ge=1, le=100_000,
        description="Longest correction or comment accepted with a rating, in characters.",
    )  # fmt: skip
