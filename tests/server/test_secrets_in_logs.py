"""Secrets never reach the logs (OWASP LLM02): API keys (valid, revoked or guessed), query
strings, questions and document text are absent from every log record of a busy session."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from server.app import create_app
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator

ADMIN = "admin-secret-5e1f0c9a7d"


def test_keys_questions_and_document_text_never_reach_the_logs(
    make_settings: MakeSettings, tmp_path: Path, docs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(home=tmp_path / "home", retrieval={"min_score": 0.0},
                             server={"api_key": ADMIN, "rate_limit_per_minute": 0})  # fmt: skip
    # The generator loops: its answer is replaced, and that is logged.
    generator = FakeGenerator(default="Run make run to install it [1]. " * 12)
    services = Services(settings, embedder=FakeEmbedder(), generator=generator)
    services.ingestor.ingest([docs], collection="docs")
    client = create_app(settings, services).test_client()
    _, reader = services.keys.create(name="reader", role="reader")
    revoked_key, revoked = services.keys.create(name="old", role="reader")
    services.keys.revoke(revoked_key.id)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with caplog.at_level(logging.DEBUG):
        question = "QUESTION-0815: how do I run make run to install ragqa and start the server?"
        for key in (reader, revoked, "rqk_guess0000_GUESSED-token-1234", ADMIN):
            client.post("/api/chat?token=QUERYSTRING-4711",
                        headers={"Authorization": f"Bearer {key}"},
                        json={"question": question, "mode": "rag"})  # fmt: skip
        client.post("/api/search", headers=admin, json={"query": "SEARCHED-2323 install"})
        client.post(
            "/v1/chat/completions",
            headers=admin,
            json={
                "model": "ragqa",
                "messages": [{"role": "user", "content": "OPENAI-7878 install?"}],
            },
        )
    assert caplog.records, "nothing was logged: the test would prove nothing"
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in (ADMIN, reader, revoked, "GUESSED-token-1234", "QUERYSTRING-4711",
                   "QUESTION-0815", "SEARCHED-2323", "OPENAI-7878",
                   "install ragqa and"):  # fmt: skip
        assert secret not in logged, secret
