"""Document upload, listing and deletion over HTTP (Flask test client, fakes behind it)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from server.app import create_app
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services.settings, services).test_client()


def upload(client: FlaskClient, collection: str, files: dict[str, bytes], **query: str):  # type: ignore[no-untyped-def]
    data = {"files": [(io.BytesIO(content), name) for name, content in files.items()]}
    return client.post(f"/api/collections/{collection}/documents", data=data,
                       content_type="multipart/form-data", query_string=query)  # fmt: skip


def test_upload_list_ask_delete(client: FlaskClient, generator: FakeGenerator) -> None:
    files = {
        "leave.md": b"# Leave\n\nAsk your manager for leave.",
        "../../etc/evil.txt": b"Expenses go to finance.",
    }
    response = upload(client, "handbook", files)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["files_ok"] == 2 and report["chunks_added"] == 2 and report["errors"] == []
    listed = client.get("/api/collections/handbook/documents").get_json()["documents"]
    names = sorted(Path(d["source"]).name for d in listed)
    assert names == ["etc_evil.txt", "leave.md"]  # the path was sanitised
    assert all("/uploads/handbook/" in d["source"] for d in listed)
    generator.enqueue("Ask your manager [1].")
    answer = client.post("/api/chat", json={"question": "How do I get leave?",
                                            "collection": "handbook"}).get_json()  # fmt: skip
    assert answer["citations"][0]["source"].endswith("leave.md")
    deleted = client.delete("/api/collections/handbook/documents/leave.md")
    assert deleted.status_code == 200 and deleted.get_json()["chunks_removed"] == 1
    after = client.get("/api/collections/handbook/documents").get_json()["documents"]
    assert [Path(d["source"]).name for d in after] == ["etc_evil.txt"]
    again = client.delete("/api/collections/handbook/documents/leave.md")
    assert again.status_code == 404


def test_reupload_changed_file_replaces_it(client: FlaskClient) -> None:
    upload(client, "docs", {"a.txt": b"first version"})
    same = upload(client, "docs", {"a.txt": b"first version"}).get_json()
    assert same["files_unchanged"] == 1 and same["chunks_added"] == 0
    changed = upload(client, "docs", {"a.txt": b"second version"}).get_json()
    assert (changed["chunks_added"], changed["chunks_removed"]) == (1, 1)
    listed = client.get("/api/collections/docs/documents").get_json()["documents"]
    assert len(listed) == 1


def test_unsupported_files_are_reported_not_saved(client: FlaskClient, services: Services) -> None:
    report = upload(client, "docs", {"tool.exe": b"MZ", "ok.txt": b"fine"}).get_json()
    assert report["files_ok"] == 1 and report["files_failed"] == 1
    assert report["errors"] == [{"path": "tool.exe", "error": "unsupported file type"}]
    folder = services.settings.home.resolve() / "uploads" / "docs"
    assert sorted(p.name for p in folder.iterdir()) == ["ok.txt"]


def test_async_upload_returns_a_job_to_poll(client: FlaskClient) -> None:
    response = upload(client, "docs", {f"f{i}.txt": f"file number {i}".encode() for i in range(5)},
                      wait="false")  # fmt: skip
    assert response.status_code == 202
    status_url = response.get_json()["status_url"]
    deadline = time.monotonic() + 30
    while (job := client.get(status_url).get_json())["status"] != "done":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["files_total"] == job["files_done"] == 5
    assert job["report"]["files_ok"] == 5 and job["chunks_added"] == 5
    assert client.get("/api/jobs/nope").status_code == 404


def test_collections_listing_and_deletion(client: FlaskClient) -> None:
    upload(client, "first", {"a.txt": b"alpha"})
    upload(client, "second", {"b.txt": b"beta", "c.txt": b"gamma"})
    rows = client.get("/api/collections").get_json()["collections"]
    assert [(r["name"], r["documents"], r["chunks"]) for r in rows] == [
        ("first", 1, 1), ("second", 2, 2)]  # fmt: skip
    listing = client.get("/api/collections").get_json()  # no key needed: everyone is admin
    assert (listing["default"], listing["role"], listing["may_write"]) == ("docs", "admin", True)
    assert client.delete("/api/collections/first").status_code == 200
    assert [r["name"] for r in client.get("/api/collections").get_json()["collections"]] == [
        "second"]  # fmt: skip
    assert client.delete("/api/collections/first").status_code == 404
    assert client.get("/api/collections/first/documents").status_code == 404


def test_bad_uploads(client: FlaskClient) -> None:
    empty = client.post("/api/collections/docs/documents", data={},
                        content_type="multipart/form-data")  # fmt: skip
    assert empty.status_code == 400 and "multipart" in empty.get_json()["error"]["message"]
    assert upload(client, "a b", {"a.txt": b"x"}).status_code == 400
    nameless = upload(client, "docs", {"...": b"x"})
    assert nameless.get_json()["files_failed"] == 1


def test_upload_size_limit(tmp_path: Path, make_settings: MakeSettings) -> None:
    settings = make_settings(home=tmp_path, server={"max_upload_bytes": 4096})
    app = create_app(settings, Services(settings, embedder=FakeEmbedder(),
                                        generator=FakeGenerator()))  # fmt: skip
    response = upload(app.test_client(), "docs", {"big.txt": b"x" * 10_000})
    assert response.status_code == 413
    assert not (tmp_path / "uploads" / "docs" / "big.txt").exists()


def test_an_uploaded_email_lists_its_attachments_and_goes_with_them(client: FlaskClient) -> None:
    from tests.ingest.test_mail import SUBJECT, message

    report = upload(client, "inbox", {"release.eml": message()}).get_json()
    assert report["files_ok"] == 1 and len(report["attachments"]) == 3
    assert [Path(e["source"]).name for e in report["attachment_errors"]] == ["logs.zip"]
    listed = client.get("/api/collections/inbox/documents").get_json()["documents"]
    by_name = {Path(d["source"]).name: d for d in listed}
    assert by_name["ingesting.md"]["attached_to"] == by_name["release.eml"]["source"]
    assert by_name["release.eml"]["attached_to"] is None
    hits = client.post("/api/search", json={"query": "When does the release freeze start?",
                                            "collection": "inbox", "k": 1,
                                            "retrieval_mode": "keyword"}).get_json()  # fmt: skip
    assert hits["hits"][0]["location"] == f"e-mail “{SUBJECT}”, 2026-11-02"
    deleted = client.delete("/api/collections/inbox/documents/release.eml")
    assert deleted.status_code == 200 and deleted.get_json()["chunks_removed"] > 0
    assert client.get("/api/collections/inbox/documents").get_json()["documents"] == []


def test_office_opendocument_and_outlook_files_upload(client: FlaskClient) -> None:
    here = Path(__file__).resolve().parents[1] / "ingest"
    files = {name: (here / folder / name).read_bytes()
             for folder, name in (("office", "book.ods"), ("office", "talk.odp"),
                                  ("office", "notes.odt"), ("mail", "outer.msg"))}  # fmt: skip
    report = upload(client, "office", files).get_json()
    assert (report["files_ok"], report["errors"]) == (4, [])
    query = {"query": "Which team has billing@example.com?", "collection": "office", "k": 1,
             "retrieval_mode": "keyword"}  # fmt: skip
    [hit] = client.post("/api/search", json=query).get_json()["hits"]
    assert hit["location"] == "sheet Contacts, rows 3-3"


def test_deleting_an_upload_by_source_removes_its_file(client: FlaskClient,
                                                       services: Services) -> None:  # fmt: skip
    upload(client, "docs", {"a.txt": b"alpha", "b.txt": b"beta"})
    listed = client.get("/api/collections/docs/documents").get_json()["documents"]
    source = next(d["source"] for d in listed if d["source"].endswith("/a.txt"))
    response = client.delete("/api/collections/docs/documents", query_string={"source": source})
    assert response.status_code == 200 and response.get_json()["chunks_removed"] == 1
    folder = services.settings.home.resolve() / "uploads" / "docs"
    assert sorted(p.name for p in folder.iterdir()) == ["b.txt"]
