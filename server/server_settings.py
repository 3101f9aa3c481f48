"""The HTTP server's settings (RAGQA_SERVER__*): address, keys, limits, logs, shutdown."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class ServerSettings(BaseModel):
    """The HTTP server and its limits."""

    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port to listen on.")
    trusted_proxies: int = Field(
        default=0, ge=0, le=5,
        description="How many reverse proxies stand in front of ragqa: their X-Forwarded-For, "
        "-Proto and -Host headers are then trusted, so rate limits count the real client. 0 "
        "(the default): the headers are ignored (a client could forge them).",
    )  # fmt: skip
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Web origins whose pages may call `/api/*` and `/v1/*` from a browser, as a "
        'JSON list (`["https://intranet.example.com"]`); empty (the default): none, CORS off.',
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`ragqa serve`'s log lines: `text`, or `json` (one object per line: time, "
        "level, logger, request_id, message) for log collectors.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="An admin key (the bootstrap key): when set, or once `ragqa keys create` has "
        "made a key, `/api/*` and `/v1/*` require `Authorization: Bearer <key>`.",
    )
    rate_limit_per_minute: int = Field(
        default=60, ge=0,
        description="Requests per minute to `/api/*`, `/v1/*` and `/metrics` per API key (per "
        "client address without a valid key); 0 disables.",
    )  # fmt: skip
    max_question_chars: int = Field(
        default=2000, ge=1, le=100_000, description="Longest question accepted, in characters."
    )
    max_request_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest JSON request body, in bytes."
    )
    max_upload_bytes: int = Field(
        default=100_000_000, ge=1024, description="Largest document upload request, in bytes."
    )
    warm_up: bool = Field(
        default=True, description="Load the models in the background when the server starts."
    )
    shutdown_grace_s: int = Field(
        default=60, gt=0, le=3600,
        description="On SIGTERM, `ragqa serve` stops taking requests and gives the answers "
        "being written this long to finish before it exits.",
    )  # fmt: skip
