"""The shared database (PostgreSQL, started by the test): the keyword index, keys, feedback,
ingest jobs and rate limits behave as on SQLite, and two instances (two servers) see one
another's writes. Skips where PostgreSQL is not installed."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from finetune.feedback import FeedbackStore
from generation.types import Answer
from ingest.report import IngestReport
from retrieval.database import PostgresDatabase
from retrieval.filters import SearchFilter
from retrieval.keyword import KeywordIndex
from retrieval.keyword_pg import PostgresKeywordIndex
from server.app import create_app
from server.jobs import JobRegistry
from server.keys import KeyStore
from server.ratelimit import RateLimiter
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder
from tests.retrieval.test_keyword import chunk

PARTS = [
    chunk(1, "Installing packages with apt is easy."),
    chunk(2, "The kernel schedules processes; the kernel is Linux."),
    chunk(3, "Debian uses dpkg underneath apt."),
    chunk(4, "Backups of the ledger run nightly; a backup is kept ninety days."),
]


def test_bm25_in_postgres_ranks_like_fts5(postgres_url: str) -> None:
    shared, local = PostgresKeywordIndex(PostgresDatabase(postgres_url)), KeywordIndex()
    for index in (shared, local):
        index.add("docs", PARTS)
    for question in ("How do I install a package?", "dpkg", "kernel processes", "backup"):
        ours = [c.id for c, _ in shared.search("docs", question, 3)]
        fts5 = [c.id for c, _ in local.search("docs", question, 3)]
        assert ours == fts5, question
    assert shared.search("docs", "the of and", 3) == []  # only stop words
    assert shared.search("nothing", "apt", 3) == []


def test_postgres_keyword_round_trip_and_filters(postgres_url: str) -> None:
    index = PostgresKeywordIndex(PostgresDatabase(postgres_url))
    original = chunk(1, "alpha beta", page=3, section="Intro")
    index.add("docs", [original])
    index.add("docs", [original])  # same id: replaced, not duplicated
    other = PostgresKeywordIndex(PostgresDatabase(postgres_url))  # another server
    assert other.count("docs") == 1 and [c for c, _ in other.search("docs", "alpha", 5)] == [
        original]  # fmt: skip
    parts = [chunk(i, f"apt guide part {i}", f"/{i % 2}.pdf", i,
                   section="Install" if i < 5 else "Other") for i in range(10, 20)]  # fmt: skip
    index.replace("many", parts)
    where = SearchFilter(sources=("/1.pdf",), page_min=13, page_max=17)
    assert sorted(c.page or 0 for c, _ in index.search("many", "apt guide", 10, where=where)) == [
        13, 15, 17]  # fmt: skip
    where = SearchFilter(section="Other", metadata={"filename": "0.pdf"})
    assert sorted(c.page or 0 for c, _ in index.search("many", "apt", 10, where=where)) == [
        10, 12, 14, 16, 18]  # fmt: skip
    index.delete("docs", ["c1"])
    assert other.is_empty("docs") and not other.is_empty("many")
    index.drop("many")
    assert other.count("many") == 0 and other.rows("many") == []


def test_keys_feedback_and_jobs_are_shared(postgres_url: str) -> None:
    one, two = PostgresDatabase(postgres_url), PostgresDatabase(postgres_url)
    key, secret = KeyStore(one).create(name="ci", role="reader", collections=["docs"])
    assert KeyStore(two).verify(secret) == key and KeyStore(two).required()
    KeyStore(two).revoke(key.id)
    assert KeyStore(one).verify(secret) is None
    answer = Answer(text="a.", mode="extractive", refused=False, citations=(), question="q?")
    answer_id = FeedbackStore(one).record(answer, collection="docs")
    FeedbackStore(two).rate(answer_id, "down", correction="b.")
    [rated] = FeedbackStore(one).rated()
    assert (rated.answer_id, rated.rating, rated.correction) == (answer_id, "down", "b.")
    assert FeedbackStore(two).counts() == {"answers": 1, "up": 0, "down": 1}
    taker, other = JobRegistry(path=one), JobRegistry(path=two)
    job = taker.submit("docs", lambda progress: IngestReport())
    assert job.finished.wait(10)
    seen = other.get(job.id).to_dict()
    assert (seen["status"], seen["collection"]) == ("done", "docs")


def test_rate_limits_are_counted_once_across_servers(postgres_url: str) -> None:
    limiters = [RateLimiter(10, PostgresDatabase(postgres_url)) for _ in range(4)]
    allowed: list[bool] = []

    def call(limiter: RateLimiter) -> None:
        for _ in range(10):
            allowed.append(limiter.allow("client-a"))

    threads = [threading.Thread(target=call, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(allowed) == 40 and allowed.count(True) == 10  # 10 per minute, in all
    assert limiters[0].retry_after("client-a") >= 1


def test_the_server_answers_503_while_its_database_is_down(
    make_settings: MakeSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = "postgresql://ragqa:s3cret-pw@127.0.0.1:1/ragqa"  # nothing listens on port 1
    settings = make_settings(home=tmp_path, database={"url": url})
    app = create_app(settings, Services(settings, embedder=FakeEmbedder()))  # starts anyway
    with caplog.at_level(logging.DEBUG):
        response = app.test_client().get("/api/collections")
    assert response.status_code == 503, response.text
    assert response.json["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert "s3cret-pw" not in response.text and "s3cret-pw" not in caplog.text
    assert "s3cret-pw" not in repr(settings)  # the URL is a secret setting
