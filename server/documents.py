"""Collections and documents over HTTP: upload (with a pollable job), list, delete."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import Blueprint, Response, jsonify, request, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from ingest.discovery import source_id
from ingest.formats import file_format
from ingest.report import FileResult, IngestProgress, IngestReport
from retrieval.chroma import validate_collection_name
from retrieval.disk import disk_full, store_full
from server.access import current_key, require_collection
from server.current import jobs, metrics, services
from server.errors import BadRequestError

documents_api = Blueprint("documents", __name__, url_prefix="/api")


def upload_dir(collection: str) -> Path:
    """Where uploaded files of a collection are kept (their path is their document id)."""
    return services().settings.home.resolve() / "uploads" / collection


def _save(upload: FileStorage, folder: Path) -> Path:
    """Store one upload under a sanitised name, atomically (a partial file is never seen)."""
    name = secure_filename(upload.filename or "")
    if not name:
        raise BadRequestError(f"Unusable file name {upload.filename!r}; rename the file.")
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".upload-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            upload.save(out)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        if disk_full(error, folder):
            raise store_full(folder, name) from error
        raise
    target = folder / name
    os.replace(temporary, target)
    return target


@documents_api.get("/collections")
def list_collections() -> Response:
    """Every collection the caller's key may use, with its number of documents and chunks,
    and what the key may do (so a client shows upload and delete only to writers)."""
    index, key = services().index, current_key()
    rows = [
        {"name": n, "documents": len(index.documents(n)), "chunks": index.count(n)}
        for n in index.list_collections()
        if key.sees(n)
    ]
    default = services().settings.collection
    return jsonify({"collections": rows, "default": default if key.sees(default) else None,
                    "role": key.role, "may_write": key.may("write")})  # fmt: skip


@documents_api.delete("/collections/<name>")
def delete_collection(name: str) -> Response:
    """Remove a collection and everything in it."""
    services().index.delete_collection(name)
    return jsonify({"deleted": name})


@documents_api.get("/collections/<name>/documents")
def list_documents(name: str) -> Response:
    """The collection's catalogue."""
    index = services().index
    index.count(name)  # 404 if the collection does not exist
    records = index.documents(name).values()
    return jsonify({"collection": name, "documents": [r.to_dict() for r in records]})


@documents_api.post("/collections/<name>/documents")
def upload_documents(name: str) -> tuple[Response, int]:
    """Multipart upload of one or more files; ?wait=false returns a job to poll instead."""
    validate_collection_name(name)
    uploads = [f for key in request.files for f in request.files.getlist(key) if f.filename]
    if not uploads:
        raise BadRequestError("Send files as multipart/form-data, e.g. curl -F files=@guide.pdf")
    rejected: list[FileResult] = []
    saved: list[Path] = []
    for upload in uploads:
        if file_format(Path(upload.filename or "")) is None:
            rejected.append(FileResult(upload.filename or "", error="unsupported file type"))
        else:
            saved.append(_save(upload, upload_dir(name)))
    ingestor, counted = services().ingestor, metrics()

    def work(progress: IngestProgress) -> IngestReport:
        report = ingestor.ingest(saved, collection=name, progress=progress) if saved else None
        report = report or IngestReport()
        for result in rejected:
            report.add(result)
        counted.ingest(report)
        return report

    job = jobs().submit(name, work)
    status_url = url_for("documents.job_status", job_id=job.id)
    if request.args.get("wait", "true").lower() in {"false", "0", "no"}:
        return jsonify({"job_id": job.id, "status_url": status_url}), 202
    job.finished.wait()
    if job.exception is not None:  # the job failed: answered as its error (logged)
        raise job.exception
    if job.report is None:
        raise RuntimeError(f"ingest job {job.id} failed: {job.error}")
    return jsonify({**job.report.to_dict(), "job_id": job.id}), 200


@documents_api.delete("/collections/<name>/documents")
def delete_document_by_source(name: str) -> Response:
    """Remove a document named by its catalogue source (?source=...)."""
    source = request.args.get("source")
    if not source:
        raise BadRequestError("Name the document: ?source=<source as listed by GET documents>.")
    removed = services().ingestor.delete(name, source)
    uploaded = Path(source)
    if uploaded.parent == upload_dir(name) and uploaded.name == secure_filename(uploaded.name):
        uploaded.unlink(missing_ok=True)  # an upload's file goes with it, as by file name
    return jsonify({"deleted": source, "chunks_removed": removed})


@documents_api.delete("/collections/<name>/documents/<filename>")
def delete_uploaded_document(name: str, filename: str) -> Response:
    """Remove an uploaded document by its file name."""
    path = upload_dir(name) / secure_filename(filename)
    source = _uploaded_source(name, path)
    removed = services().ingestor.delete(name, source)
    path.unlink(missing_ok=True)
    return jsonify({"deleted": source, "chunks_removed": removed})


def _uploaded_source(collection: str, path: Path) -> str:
    """The catalogue's source of an upload named like `path`: this server's own, else the one
    another server (another home, behind the same Chroma server) took, if there is just one."""
    own = source_id(path)
    sources = services().index.documents(collection)
    if own in sources:
        return own
    others = [s for s in sources if Path(s).name == path.name and Path(s).parent.name ==
              collection and Path(s).parent.parent.name == "uploads"]  # fmt: skip
    return others[0] if len(others) == 1 else own


@documents_api.get("/jobs/<job_id>")
def job_status(job_id: str) -> Response:
    """Progress of an ingest job: files done of total, chunks added, report when done."""
    job = jobs().get(job_id)
    require_collection(job.collection)
    return jsonify(job.to_dict())
