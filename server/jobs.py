"""Background ingest jobs whose progress can be polled over HTTP."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.report import FileResult, IngestProgress, IngestReport

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
            "report": self.report.to_dict() if self.report else None,
            "error": self.error,
        }


class JobNotFoundError(Exception):
    """No job with that id (jobs are kept in memory while the server runs)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"No job {job_id!r}; jobs are kept in memory while the server runs.")


class _JobProgress:
    def __init__(self, job: Job, lock: threading.Lock) -> None:
        self._job = job
        self._lock = lock

    def start(self, total_files: int) -> None:
        with self._lock:
            self._job.status = "running"
            self._job.files_total = total_files

    def file_done(self, result: FileResult) -> None:
        with self._lock:
            self._job.files_done += 1
            self._job.chunks_added += result.chunks_added


class JobRegistry:
    """Runs jobs on background threads; remembers the most recent ones."""

    def __init__(self, *, keep: int = 200) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep

    def submit(self, collection: str, work: Callable[[IngestProgress], IngestReport]) -> Job:
        """Start `work` in the background with a progress sink bound to a new job."""
        job = Job(id=uuid.uuid4().hex, collection=collection)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                self._jobs.popitem(last=False)
        thread = threading.Thread(
            target=self._run, args=(job, work), name=f"ingest-{job.id[:8]}", daemon=True
        )
        thread.start()
        return job

    def _run(self, job: Job, work: Callable[[IngestProgress], IngestReport]) -> None:
        try:
            report = work(_JobProgress(job, self._lock))
        except Exception as error:  # reported through the job, and logged with its traceback
            logger.exception("ingest job %s failed", job.id)
            with self._lock:
                job.status, job.error, job.finished_at = "failed", str(error), time.time()
        else:
            with self._lock:
                job.status, job.report, job.finished_at = "done", report, time.time()
        finally:
            job.finished.set()

    def get(self, job_id: str) -> Job:
        """A job by id; JobNotFoundError if unknown (or long forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job
