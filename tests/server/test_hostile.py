"""Oversized, malformed and malicious requests: each gets a 4xx (or, for a file that is data
but not readable, a report saying so), never a 5xx, a hang, or a file written outside the
uploads folder."""

from __future__ import annotations

import io
import socket
import time
import zipfile
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from server.app import create_app
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.server.live import serve


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services.settings, services).test_client()


def upload(client: FlaskClient, name: str, data: bytes):  # type: ignore[no-untyped-def]
    return client.post("/api/collections/docs/documents",
                       data={"files": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")  # fmt: skip


@pytest.mark.parametrize("name", ["../../escape.md", "/etc/escape.md", "..\\..\\escape.md",
                                  "a\x00b.md", "....//escape.md", "\u202eexe.md"])  # fmt: skip
def test_file_names_cannot_leave_the_uploads_folder(client: FlaskClient, services: Services,
                                                    tmp_path: Path, name: str) -> None:  # fmt: skip
    response = upload(client, name, b"# Escape\n\nText that stays where it belongs.\n")
    assert response.status_code < 500
    home = services.settings.home.resolve()
    written = [p for p in home.parent.rglob("*escape*") if p.is_file()]
    assert all(home / "uploads" / "docs" in p.parents for p in written), written
    assert not list(Path("/etc").glob("escape*"))


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inner.txt", "text inside an archive")
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "data"), [
    ("archive.pdf", _zip()),
    ("program.pdf", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8),
    ("random.docx", bytes(range(256)) * 4),
    ("empty.pdf", b""),
    ("truncated.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog"),
])  # fmt: skip
def test_binaries_and_archives_renamed_are_reported_not_crashed_on(
    client: FlaskClient, name: str, data: bytes
) -> None:
    response = upload(client, name, data)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["files_failed"] == 1 and report["files_ok"] == 0
    assert report["errors"][0]["error"]  # says why


@pytest.mark.parametrize("body", [
    b'{"question": "caf\xe9 \xff\xfe"}',  # invalid UTF-8
    b'{"question": "unterminated',
    b"[" * 100_000 + b"]" * 100_000,  # deeply nested
    b'{"question": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}",
    b"\x00\x01\x02",
    b'{"question": "install \\ud800", "query": "install \\udfff", "model": "ragqa", '
    b'"messages": [{"role": "user", "content": "\\ud800"}]}',  # unpaired surrogates
    b'{"query": "install", "filters": {"metadata": {"k": "\\ud800"}}}',
])  # fmt: skip
def test_malformed_json_is_400(
    client: FlaskClient, services: Services, docs: Path, body: bytes
) -> None:
    services.ingestor.ingest([docs], collection="docs")  # so requests get past "no such"
    for path in ("/api/chat", "/api/search", "/api/feedback", "/v1/chat/completions"):
        response = client.post(path, data=body, content_type="application/json")
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert response.get_json()["error"]["message"]


LINE = b"word " * 4_000_000  # 20 MB, no newline


def post_line(base: str) -> requests.Response:
    """The 20 MB line as a file upload, over real HTTP (Flask's test client leaks the temporary
    file it builds a large multipart body in)."""
    return requests.post(f"{base}/api/collections/docs/documents", timeout=120,
                         files={"files": ("one-line.txt", LINE)})  # fmt: skip


def test_a_20_mb_single_line_over_the_limits_is_413(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(home=tmp_path, server={"max_upload_bytes": 10_000_000})
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    with serve(services) as base:
        chat = requests.post(f"{base}/api/chat", data=b'{"question": "' + LINE + b'"}',
                             headers={"Content-Type": "application/json"}, timeout=60)  # fmt: skip
        assert chat.status_code == 413 and chat.json()["error"]["message"]
        response = post_line(base)
        assert response.status_code == 413 and response.json()["error"]["message"]
    assert not (tmp_path / "uploads" / "docs" / "one-line.txt").exists()


@pytest.mark.slow
def test_a_20_mb_single_line_within_the_limits_is_read(services: Services) -> None:
    with serve(services) as base:
        response = post_line(base)
    assert response.status_code == 200
    assert response.json()["files_ok"] == 1


def test_slow_clients_do_not_hold_up_the_others(services: Services) -> None:
    with serve(services) as base:
        host, port = base.removeprefix("http://").split(":")
        dribblers = []
        for _ in range(8):  # clients that start a request and never finish it
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n")
            dribblers.append(sock)
        try:
            started = time.monotonic()
            response = requests.get(f"{base}/healthz", timeout=10)
            assert response.status_code == 200
            assert time.monotonic() - started < 5
        finally:
            for sock in dribblers:
                sock.close()
