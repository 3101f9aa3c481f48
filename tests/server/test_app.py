"""The HTTP API through Flask's test client, with fakes behind it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from retrieval import recovery
from retrieval.chroma import open_chroma_client
from server.app import create_app
from server.settings import Settings
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator, FakeReranker


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services.settings, services).test_client()


def test_healthz_needs_no_model(settings: Settings) -> None:
    class Exploding(Services):
        @property
        def embedder(self):  # type: ignore[no-untyped-def]
            raise AssertionError("healthz must not load a model")

    app = create_app(settings, Exploding(settings))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_chat_answers_with_citations(
    client: FlaskClient, services: Services, docs: Path, generator: FakeGenerator
) -> None:
    services.ingestor.ingest([docs], collection="docs")
    generator.enqueue("Run make run [1].")
    response = client.post("/api/chat", json={"question": "How do I install ragqa?"})
    assert response.status_code == 200
    data = response.get_json()
    assert data["answer"] == "Run make run [1]."
    assert data["mode"] == "rag"
    assert data["refused"] is False
    assert data["citations"][0]["source"].endswith("install.md")
    assert set(data["citations"][0]) >= {"n", "source", "page", "chunk_id", "text"}
    timings = data["timings_ms"]
    assert set(timings) >= {"retrieval", "generation", "total"}
    assert timings["total"] >= timings["retrieval"] + timings["generation"] - 0.2  # rounding
    assert timings["retrieval"] > 0  # a real search of a real Chroma store took time


def test_chat_in_named_collection(client: FlaskClient, services: Services, docs: Path) -> None:
    services.ingestor.ingest([docs / "models.md"], collection="models")
    response = client.post(
        "/api/chat", json={"question": "Which generator?", "collection": "models"}
    )
    assert response.status_code == 200
    assert response.get_json()["citations"][0]["source"].endswith("models.md")


def test_missing_collection_is_404_with_what_to_run(client: FlaskClient) -> None:
    response = client.post("/api/chat", json={"question": "Anything?", "collection": "nothing"})
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "collection_not_found"
    assert "ragqa ingest PATH --collection nothing" in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (None, 400, "bad_request"),
        ({"question": 3}, 400, "bad_request"),
        ({}, 400, "bad_request"),
        ({"question": "   "}, 400, "invalid_question"),
        ({"question": "q", "collection": "a b"}, 400, "invalid_collection_name"),
        ({"question": "q", "mode": "magic"}, 400, "invalid_question"),
    ],
)
def test_bad_requests_get_json_errors(
    client: FlaskClient, body: object, status: int, code: str
) -> None:
    response = (
        client.post("/api/chat", json=body)
        if body is not None
        else client.post("/api/chat", data="not json", content_type="text/plain")
    )
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_oversized_request_is_413(tmp_path: Path, make_settings: MakeSettings) -> None:
    settings = make_settings(home=tmp_path, server={"max_request_bytes": 2048})
    client = create_app(
        settings, Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    ).test_client()
    response = client.post("/api/chat", json={"question": "x" * 5000})
    assert response.status_code == 413
    assert "error" in response.get_json()


def test_unknown_errors_are_500_without_details(services: Services, docs: Path) -> None:
    class Broken(FakeGenerator):
        def generate(self, messages, **options):  # type: ignore[no-untyped-def]
            raise RuntimeError("secret internal detail")

    services.ingestor.ingest([docs], collection="docs")
    broken = Services(services.settings, embedder=FakeEmbedder(), generator=Broken())
    client = create_app(services.settings, broken).test_client()
    response = client.post("/api/chat", json={"question": "q?"})
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True)


def test_api_key_is_required_when_set(
    tmp_path: Path, docs: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(home=tmp_path, server={"api_key": "k3y"})
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    services.ingestor.ingest([docs], collection="docs")
    client = create_app(settings, services).test_client()
    assert client.post("/api/chat", json={"question": "q"}).status_code == 401
    wrong = client.post("/api/chat", json={"question": "q"}, headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401
    right = client.post(
        "/api/chat", json={"question": "q"}, headers={"Authorization": "Bearer k3y"}
    )
    assert right.status_code == 200
    assert client.get("/healthz").status_code == 200  # liveness stays open for probes


def test_rate_limit_per_client(tmp_path: Path, docs: Path, make_settings: MakeSettings) -> None:
    settings = make_settings(home=tmp_path, server={"rate_limit_per_minute": 3})
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    services.ingestor.ingest([docs], collection="docs")
    client = create_app(settings, services).test_client()
    responses = [client.post("/api/chat", json={"question": "q"}) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert 1 <= int(responses[-1].headers["Retry-After"]) <= 60
    other = client.post(
        "/api/chat", json={"question": "q"}, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert other.status_code == 200


def test_chat_page_is_served_with_safe_headers(client: FlaskClient) -> None:
    # Static files stream from disk: close each response (warnings are errors here).
    with client.get("/") as page, client.get("/static/app.js") as script:
        assert page.status_code == 200
        assert b"<form" in page.data
        # The upload box accepts what ragqa reads, into the default collection by default.
        assert b'accept=".csv,.docx,.eml,.epub,' in page.data
        assert b'data-default="docs"' in page.data
        assert b"{{" not in page.data
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert b"/api/chat" in script.data
    # The page never inserts server text as HTML, in any of its scripts.
    scripts = sorted((Path(__file__).parents[2] / "server" / "static").glob("*.js"))
    assert len(scripts) >= 5
    for path in scripts:
        assert "innerHTML" not in path.read_text(), path.name
        assert "insertAdjacentHTML" not in path.read_text(), path.name


def test_search_endpoint_with_modes_and_filters(client: FlaskClient, services: Services,
                                                docs: Path) -> None:  # fmt: skip
    services.ingestor.ingest([docs], collection="docs")
    for mode in ("dense", "keyword", "hybrid"):
        response = client.post("/api/search", json={"query": "generator SmolLM2", "k": 1,
                                                    "retrieval_mode": mode})  # fmt: skip
        assert response.status_code == 200, response.get_json()
        [hit] = response.get_json()["hits"]
        assert hit["source"].endswith("models.md") and hit["section"] == "Models"
    only = client.post("/api/search", json={"query": "generator SmolLM2", "filters": {
        "source": str((docs / "install.md").resolve())}}).get_json()["hits"]  # fmt: skip
    assert {h["source"] for h in only} == {str((docs / "install.md").resolve())}
    bad = client.post("/api/search", json={"query": "x", "filters": {"colour": "red"}})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_filter"
    bad = client.post("/api/search", json={"query": "x", "retrieval_mode": "psychic"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_search"


def test_chat_passes_retrieval_options(client: FlaskClient, services: Services, docs: Path,
                                       generator: FakeGenerator) -> None:  # fmt: skip
    services.ingestor.ingest([docs], collection="docs")
    source = str((docs / "install.md").resolve())
    answer = client.post("/api/chat", json={"question": "How to install?", "retrieval_mode":
                         "keyword", "filters": {"source": source}}).get_json()  # fmt: skip
    assert {c["source"] for c in answer["citations"]} == {source}


def test_min_score_refuses_without_generating(
    tmp_path: Path, docs: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(home=tmp_path, retrieval={"min_score": 0.99})
    generator = FakeGenerator()
    services = Services(settings, embedder=FakeEmbedder(), generator=generator)
    services.ingestor.ingest([docs], collection="docs")
    answer = create_app(settings, services).test_client().post(
        "/api/chat", json={"question": "Something unrelated entirely?"}).get_json()  # fmt: skip
    assert answer["refused"] is True and answer["citations"]
    assert generator.prompts == []


def test_start_up_repairs_a_collection_whose_vectors_a_crash_damaged(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    topics = ["backups", "printers", "vpn", "email", "laptops", "passwords"]
    for n in range(60):
        paragraphs = [
            f"Note {n} part {i} covers {topics[(2 * n + i) % 6]} for staff who work from home"
            for i in range(20)
        ]
        (folder / f"note{n:02d}.md").write_text("\n\n".join(paragraphs))
    settings = make_settings(
        home=tmp_path / "home",
        chunking={"chunk_size": 16, "chunk_overlap": 0},
        retrieval={"min_score": 0.0},
    )
    store = open_chroma_client(path=settings.chroma_path)
    first = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator(),
                     chroma_client=store)  # fmt: skip
    first.ingestor.ingest([folder], collection="notes")
    assert first.index.count("notes") > 1000  # so Chroma has saved its HNSW files
    vectors = recovery.vector_folder(settings.chroma_path, str(store.get_collection("notes").id))
    store.close()  # the process "dies"...
    assert vectors is not None
    (vectors / "header.bin").write_bytes(bytes(100))  # ...in the middle of saving them
    restarted = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    client = create_app(settings, restarted).test_client()
    restarted.warm_up()
    assert restarted.index.repaired == ["notes"]
    text = "Note 7 part 3 covers passwords for staff who work from home"
    found = client.post("/api/search", json={"query": text, "collection": "notes",
                                             "retrieval_mode": "dense", "k": 1})  # fmt: skip
    assert found.status_code == 200
    assert found.get_json()["hits"][0]["text"] == text  # its vector is back


def test_warm_up_loads_every_component_it_built(settings: Settings) -> None:
    embedder, generator, reranker = FakeEmbedder(), FakeGenerator(), FakeReranker()
    services = Services(settings, embedder=embedder, generator=generator, reranker=reranker)
    services.warm_up()
    assert getattr(embedder, "warmed", False) and getattr(generator, "warmed", False)
    assert reranker.warmed
    assert services.retriever._reranker is reranker  # the one the server warmed


def test_readiness_waits_for_the_models_and_the_store(services: Services) -> None:
    from server.app import start_warm_up

    client = create_app(services.settings, services).test_client()
    loading = client.get("/readyz")
    assert loading.status_code == 503 and loading.headers["Retry-After"] == "5"
    assert loading.get_json() == {"status": "not_ready", "models": "loading", "store": "reachable"}
    start_warm_up(services).join(timeout=60)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    assert client.get("/healthz").status_code == 200


def test_a_failed_warm_up_is_not_ready_and_says_why(services: Services) -> None:
    from server.app import start_warm_up

    class Broken(FakeGenerator):
        def warm_up(self) -> None:
            raise RuntimeError("no weights here")

    broken = Services(services.settings, embedder=FakeEmbedder(), generator=Broken())
    start_warm_up(broken).join(timeout=60)
    response = create_app(broken.settings, broken).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["models"] == "failed: RuntimeError: no weights here"


def test_every_response_carries_a_request_id_that_log_lines_name(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    first, second = client.get("/healthz"), client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["X-Request-Id"])
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    kept = client.get("/healthz", headers={"X-Request-Id": "proxy-42.a"})
    assert kept.headers["X-Request-Id"] == "proxy-42.a"  # a proxy's id is kept
    odd = client.get("/healthz", headers={"X-Request-Id": "bad id <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["X-Request-Id"])  # not echoed
    with caplog.at_level(logging.INFO):
        secret = {"X-Request-Id": "trace-7", "Authorization": "Bearer s3cret"}
        client.post("/api/search?token=s3cret", json={"query": "q"}, headers=secret)
    [line] = [r for r in caplog.records if r.name == "ragqa.access"]
    assert line.request_id == "trace-7"
    assert re.fullmatch(r"POST /api/search \d{3} \d+ ms", line.getMessage())
    assert "s3cret" not in caplog.text


def test_json_log_lines_carry_the_request_id(client: FlaskClient) -> None:
    import json
    import logging

    from server.logs import JsonFormatter, tag_log_records

    tag_log_records()
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep()
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("ragqa.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        client.get("/healthz", headers={"X-Request-Id": "json-1"})
    finally:
        access.removeHandler(handler)
        access.setLevel(logging.NOTSET)
    [line] = [json.loads(x) for x in lines]
    assert set(line) == {"time", "level", "logger", "request_id", "message"}
    assert (line["request_id"], line["logger"], line["level"]) == ("json-1", "ragqa.access", "INFO")
    assert line["message"].startswith("GET /healthz 200 ")


def test_a_busy_model_answers_503_with_retry_after(services: Services, docs: Path) -> None:
    from retrieval.model_thread import ModelBusyError

    class Busy(FakeGenerator):
        def generate(self, *args: object, **kwargs: object) -> object:
            raise ModelBusyError("The model is busy: 16 requests are already waiting.")

    services.ingestor.ingest([docs], collection="docs")
    busy = Services(services.settings, embedder=FakeEmbedder(), generator=Busy())
    response = (
        create_app(busy.settings, busy)
        .test_client()
        .post("/api/chat", json={"question": "Which generator?"})
    )
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "busy"
