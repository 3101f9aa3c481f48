"""Background ingest jobs whose progress can be polled over HTTP.

A job runs on a thread of the process that took the upload; its state is also written to
`RAGQA_HOME/jobs.sqlite` (or the database servers share), so any worker process, or any server
on the home or the database, answers its status.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.report import FileResult, IngestProgress, IngestReport
from retrieval.database import Database, Tables, open_database

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """One ingest run: its progress while running, its report when done."""

    id: str
    collection: str
    status: str = "queued"  # queued | running | done | failed
    files_total: int = 0
    files_done: int = 0
    chunks_added: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    report: IngestReport | None = None
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event, repr=False)
    stored_report: dict[str, Any] | None = None  # the report of a job another process ran
    exception: Exception | None = field(default=None, repr=False)  # why it failed, here

    def to_dict(self) -> dict[str, object]:
        """JSON shape of GET /api/jobs/<id>."""
        return {
            "job_id": self.id,
            "collection": self.collection,
            "status": self.status,
            "files_total": self.files_total,
            "files_done": self.files_done,
            "chunks_added": self.chunks_added,
            "elapsed_s": round((self.finished_at or time.time()) - self.started_at, 2),
            "report": self.report.to_dict() if self.report else self.stored_report,
            "error": self.error,
        }


class JobNotFoundError(Exception):
    """No job with that id (or one long forgotten)."""

    def __init__(self, job_id: str, keep: int) -> None:
        super().__init__(f"No job {job_id!r}; the most recent {keep} jobs are kept.")


KEEP = 200
_COLUMNS = ("id", "collection", "status", "files_total", "files_done", "chunks_added",
            "started_at", "finished_at", "report", "error", "pid", "host")  # fmt: skip
_HOST = socket.gethostname()


class JobTable:
    """Jobs' state in SQLite (WAL) or the shared database, seen by every process and server."""

    def __init__(self, place: Path | Database, *, keep: int = KEEP) -> None:
        self._db = Tables(
            open_database(place),
            [
                "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, collection TEXT, "
                "status TEXT, files_total INTEGER, files_done INTEGER, chunks_added INTEGER, "
                "started_at REAL, finished_at REAL, report TEXT, error TEXT, pid INTEGER, "
                "host TEXT)"
            ],
        )
        self._keep = keep
        if self._db.dialect == "sqlite":  # a home made before jobs named their machine
            with self._db.transaction(write=True) as db:
                columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)").fetchall()}
                if "host" not in columns:
                    db.execute("ALTER TABLE jobs ADD COLUMN host TEXT")

    def save(self, job: Job) -> None:
        report = json.dumps(job.report.to_dict()) if job.report else None
        row = (job.id, job.collection, job.status, job.files_total, job.files_done,
               job.chunks_added, job.started_at, job.finished_at, report, job.error,
               os.getpid(), _HOST)  # fmt: skip
        update = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
        with self._db.transaction(write=True) as db:
            db.execute(
                f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(row))}) "
                f"ON CONFLICT (id) DO UPDATE SET {update}",
                row,
            )
            keep = "SELECT id FROM jobs ORDER BY started_at DESC LIMIT ?"
            db.execute(f"DELETE FROM jobs WHERE id NOT IN ({keep})", (self._keep,))

    def load(self, job_id: str) -> Job | None:
        with self._db.transaction() as db:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?",
                             (job_id,)).fetchone()  # fmt: skip
        if row is None:
            return None
        values = dict(zip(_COLUMNS, row, strict=True))
        report = json.loads(values["report"]) if values["report"] else None
        job = Job(id=values["id"], collection=values["collection"], status=values["status"],
                  files_total=values["files_total"], files_done=values["files_done"],
                  chunks_added=values["chunks_added"], started_at=values["started_at"],
                  finished_at=values["finished_at"], error=values["error"],
                  stored_report=report)  # fmt: skip
        # A process of this machine can be asked whether it still runs; one of another cannot.
        here = values["host"] in {_HOST, None}
        if job.status in {"queued", "running"} and here and not _alive(values["pid"]):
            job.status, job.error = "failed", "the server process running it stopped"
        return job


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _JobProgress:
    def __init__(self, job: Job, lock: threading.Lock, table: JobTable | None) -> None:
        self._job = job
        self._lock = lock
        self._table = table

    def start(self, total_files: int) -> None:
        with self._lock:
            self._job.status = "running"
            self._job.files_total = total_files
        self._save()

    def file_done(self, result: FileResult) -> None:
        with self._lock:
            self._job.files_done += 1
            self._job.chunks_added += result.chunks_added
        self._save()

    def _save(self) -> None:
        if self._table is not None:
            self._table.save(self._job)


class JobRegistry:
    """Runs jobs on background threads; remembers the most recent ones."""

    def __init__(self, *, keep: int = KEEP, path: Path | Database | None = None) -> None:
        """`path`: the SQLite file or database shared with other processes (None: this
        process only)."""
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep
        self._table = JobTable(path, keep=keep) if path else None

    def submit(self, collection: str, work: Callable[[IngestProgress], IngestReport]) -> Job:
        """Start `work` in the background with a progress sink bound to a new job."""
        job = Job(id=uuid.uuid4().hex, collection=collection)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                self._jobs.popitem(last=False)
        if self._table is not None:
            self._table.save(job)
        thread = threading.Thread(
            target=self._run, args=(job, work), name=f"ingest-{job.id[:8]}", daemon=True
        )
        thread.start()
        return job

    def _run(self, job: Job, work: Callable[[IngestProgress], IngestReport]) -> None:
        try:
            report = work(_JobProgress(job, self._lock, self._table))
        except Exception as error:  # reported through the job, and logged with its traceback
            logger.exception("ingest job %s failed", job.id)
            with self._lock:
                job.status, job.error, job.finished_at = "failed", str(error), time.time()
                job.exception = error
        else:
            with self._lock:
                job.status, job.report, job.finished_at = "done", report, time.time()
        finally:
            if self._table is not None:
                try:
                    self._table.save(job)
                except Exception:  # the job's own process still answers for it
                    logger.exception("could not record job %s", job.id)
            job.finished.set()

    def get(self, job_id: str) -> Job:
        """A job by id; JobNotFoundError if unknown (or long forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None and self._table is not None:
            job = self._table.load(job_id)
        if job is None:
            raise JobNotFoundError(job_id, self._keep)
        return job
