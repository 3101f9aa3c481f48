"""POST /api/chat: modes, templates, history, examples and streaming (Flask test client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from server.app import create_app
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator


@pytest.fixture
def client(services: Services, docs: Path) -> FlaskClient:
    services.ingestor.ingest([docs], collection="docs")
    return create_app(services.settings, services).test_client()


def events(body: bytes) -> list[tuple[str, object]]:
    """Parse a server-sent-events body into (event, data) pairs."""
    found = []
    for block in body.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found


@pytest.mark.parametrize("mode", ["closed_book", "few_shot", "rag"])
def test_every_mode_runs_and_says_which_it_was(
    client: FlaskClient, generator: FakeGenerator, mode: str
) -> None:
    generator.enqueue("Run make run [1].")
    data = client.post("/api/chat", json={"question": "How to install?", "mode": mode}).get_json()
    assert data["mode"] == mode and data["answer"] == "Run make run [1]."
    assert bool(data["citations"]) is (mode == "rag")


def test_template_per_request_and_per_collection(
    tmp_path: Path, docs: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(
        home=tmp_path / "h",
        retrieval={"min_score": 0.0},
        answers={"collection_templates": {"help": "support"}, "mode": "rag"},
    )
    generator = FakeGenerator()
    services = Services(settings, embedder=FakeEmbedder(), generator=generator)
    for name in ("docs", "help"):
        services.ingestor.ingest([docs], collection=name)
    client = create_app(settings, services).test_client()
    asked = {"question": "How to install?"}
    assert client.post("/api/chat", json=asked).get_json()["template"] == "docs"
    assert client.post("/api/chat", json=asked | {"collection": "help"}).get_json()[
        "template"] == "support"  # fmt: skip
    chosen = client.post("/api/chat", json=asked | {"template": "extract"}).get_json()
    assert chosen["template"] == "extract"
    assert "Shortest answer:" in generator.prompts[-1][-1]["content"]
    unknown = client.post("/api/chat", json=asked | {"template": "poetry"})
    assert unknown.status_code == 400
    assert unknown.get_json()["error"]["code"] == "invalid_template"


def test_history_rewrites_the_follow_up(client: FlaskClient, generator: FakeGenerator) -> None:
    generator.enqueue("How do I install ragqa?", "Run make run [1].")
    history = [{"role": "user", "content": "What is ragqa?"},
               {"role": "assistant", "content": "A question-answering server."}]  # fmt: skip
    data = client.post("/api/chat", json={"question": "How do I install it?",
                                          "history": history}).get_json()  # fmt: skip
    assert data["standalone_question"] == "How do I install ragqa?"
    assert data["citations"][0]["source"].endswith("install.md")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"question": "q", "history": "hello"}, "invalid_history"),
        ({"question": "q", "history": [{"role": "system", "content": "x"}]}, "invalid_history"),
        ({"question": "q", "examples": [{"question": "only"}]}, "bad_request"),
        ({"question": "q", "strict": "yes"}, "bad_request"),
        ({"question": "q", "mode": "finetuned"}, "invalid_question"),
    ],
)
def test_bad_chat_fields_are_400(client: FlaskClient, body: dict[str, object], code: str) -> None:
    response = client.post("/api/chat", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_stream_sends_retrieval_tokens_and_the_final_answer(
    client: FlaskClient, generator: FakeGenerator
) -> None:
    generator.enqueue("Run make run to install ragqa [1].")
    response = client.post("/api/chat", json={"question": "How to install?", "stream": True})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    found = events(response.data)
    kinds = [kind for kind, _ in found]
    assert kinds[0] == "retrieval" and kinds[-1] == "answer"
    assert kinds.count("token") >= 5
    tokens = "".join(data["text"] for kind, data in found if kind == "token")  # type: ignore[index]
    final = found[-1][1]
    assert tokens == final["answer"] == "Run make run to install ragqa [1]."  # type: ignore[index]
    assert final["citations"][0]["source"].endswith("install.md")  # type: ignore[index]
    sources = found[0][1]["sources"]  # type: ignore[index]
    assert sources and sources[0]["n"] == 1


def test_accept_header_asks_for_a_stream(client: FlaskClient) -> None:
    response = client.post("/api/chat", json={"question": "How to install?"},
                           headers={"Accept": "text/event-stream"})  # fmt: skip
    assert response.mimetype == "text/event-stream"
    assert events(response.data)[-1][0] == "answer"


def test_stream_errors_before_the_stream_are_plain_json(client: FlaskClient) -> None:
    response = client.post("/api/chat", json={"question": "q", "collection": "nothing",
                                              "stream": True})  # fmt: skip
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "collection_not_found"


def test_a_failure_during_generation_is_an_error_event(
    client: FlaskClient, generator: FakeGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("GPU on fire")

    monkeypatch.setattr(generator, "stream", broken)
    response = client.post("/api/chat", json={"question": "How to install?", "stream": True})
    found = events(response.data)
    assert [kind for kind, _ in found] == ["retrieval", "error"]
    error = found[-1][1]["error"]  # type: ignore[index]
    assert error["code"] == "internal_error" and "GPU" not in error["message"]


def test_extractive_mode_quotes_the_documents_over_http(
    client: FlaskClient, generator: FakeGenerator
) -> None:
    data = client.post("/api/chat", json={"question": "How do I install ragqa?",
                                          "mode": "extractive"}).get_json()  # fmt: skip
    assert data["mode"] == "extractive" and not data["refused"]
    assert data["answer"] == "Run make run to install ragqa and start the server [1]."
    assert data["citations"][0]["source"].endswith("install.md")
    assert generator.prompts == []  # no model call


def test_the_default_install_answers_extractively_with_citations(
    tmp_path: Path, docs: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(home=tmp_path / "h", retrieval={"min_score": 0.0})
    assert settings.answers.mode == "extractive"  # what bench answers measured best
    generator = FakeGenerator()
    services = Services(settings, embedder=FakeEmbedder(), generator=generator)
    services.ingestor.ingest([docs], collection="docs")
    client = create_app(settings, services).test_client()
    data = client.post("/api/chat", json={"question": "How do I install ragqa?"}).get_json()
    assert data["mode"] == "extractive" and not data["refused"], data
    assert "[1]" in data["answer"] and data["citations"][0]["source"].endswith("install.md")
    assert generator.prompts == []  # no model call
    ragged = client.post("/api/chat", json={"question": "How do I install ragqa?", "mode": "rag"})
    assert ragged.get_json()["mode"] == "rag" and generator.prompts
