"""Background ingest jobs: progress while running, the report or the error when done."""

from __future__ import annotations

import threading

import pytest

from ingest.report import FileResult, IngestProgress, IngestReport
from server.jobs import JobNotFoundError, JobRegistry


def test_a_job_reports_progress_then_its_report() -> None:
    registry = JobRegistry()
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
    with pytest.raises(JobNotFoundError, match="kept in memory"):
        registry.get(jobs[0].id)
