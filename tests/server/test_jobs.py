"""Background ingest jobs: progress while running, the report or the error when done."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.report import FileResult, IngestProgress, IngestReport
from server.jobs import Job, JobNotFoundError, JobRegistry, JobTable


def stopping_halfway() -> tuple[Callable[[IngestProgress], IngestReport], threading.Event,
                                threading.Event]:  # fmt: skip
    """Work that reads one file of two, sets `halfway`, and finishes when `finish` is set."""
    halfway, finish = threading.Event(), threading.Event()

    def work(progress: IngestProgress) -> IngestReport:
        report = IngestReport()
        progress.start(2)
        result = FileResult("a.txt", chunks_added=3)
        progress.file_done(result)
        report.add(result)
        halfway.set()
        finish.wait(5)
        return report

    return work, halfway, finish


def test_a_job_reports_progress_then_its_report() -> None:
    registry = JobRegistry()
    work, halfway, finish = stopping_halfway()

    job = registry.submit("docs", work)
    assert halfway.wait(5)
    running = registry.get(job.id).to_dict()
    assert (running["status"], running["files_total"], running["files_done"]) == ("running", 2, 1)
    assert running["chunks_added"] == 3 and running["report"] is None
    finish.set()
    assert job.finished.wait(5)
    done = registry.get(job.id).to_dict()
    assert done["status"] == "done" and done["report"]["chunks_added"] == 3  # type: ignore[index]


def test_a_failed_job_says_why() -> None:
    registry = JobRegistry()

    def work(progress: IngestProgress) -> IngestReport:
        raise OSError("disk full")

    job = registry.submit("docs", work)
    assert job.finished.wait(5)
    failed = registry.get(job.id).to_dict()
    assert (failed["status"], failed["error"], failed["report"]) == ("failed", "disk full", None)


def test_only_the_most_recent_jobs_are_kept() -> None:
    registry = JobRegistry(keep=2)
    jobs = [registry.submit("docs", lambda progress: IngestReport()) for _ in range(3)]
    for job in jobs:
        assert job.finished.wait(5)
    assert registry.get(jobs[2].id) is jobs[2] and registry.get(jobs[1].id) is jobs[1]
    with pytest.raises(JobNotFoundError, match="most recent 2 jobs"):
        registry.get(jobs[0].id)


def test_every_process_on_the_home_answers_for_a_job(tmp_path: Path) -> None:
    # Two registries on one file stand for two worker processes: a job taken by one is
    # polled at the other, while it runs and when it is done.
    path = tmp_path / "jobs.sqlite"
    taker, other = JobRegistry(path=path), JobRegistry(path=path)
    work, halfway, finish = stopping_halfway()

    job = taker.submit("docs", work)
    assert halfway.wait(5)
    seen = other.get(job.id).to_dict()
    assert (seen["status"], seen["files_done"], seen["chunks_added"]) == ("running", 1, 3)
    finish.set()
    assert job.finished.wait(5)
    done = other.get(job.id)
    assert done.collection == "docs" and done.to_dict()["report"] == job.report.to_dict()
    with pytest.raises(JobNotFoundError):
        other.get("no-such-job")


def test_a_job_whose_process_died_reads_as_failed(tmp_path: Path) -> None:
    table = JobTable(tmp_path / "jobs.sqlite")
    table.save(Job(id="j1", collection="docs", status="running"))
    with sqlite3.connect(tmp_path / "jobs.sqlite") as db:  # as if its process were gone
        db.execute("UPDATE jobs SET pid = ?", (2**22 + 12345,))
    job = JobRegistry(path=tmp_path / "jobs.sqlite").get("j1")
    assert (job.status, job.error) == ("failed", "the server process running it stopped")
