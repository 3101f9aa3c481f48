"""Request bodies are validated by their pydantic models: strict types, the field named in the
400, the JSON size limit on every JSON endpoint."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from server.app import create_app
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services.settings, services).test_client()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/chat", {"question": "q", "stream": "yes"}, "stream"),
        ("/api/chat", {"question": ["q"]}, "question"),
        ("/api/chat", {"question": "q", "examples": [{"question": "q", "answer": 1}]},
         "examples.0.answer"),
        ("/api/chat", {"question": "q", "examples": [{"question": "q", "answer": "a"}] * 21},
         "examples"),
        ("/api/chat", {"question": "q", "filters": ["source"]}, "filters"),
        ("/api/search", {"query": "q", "k": "3"}, "k"),
        ("/api/search", {"query": "q", "k": True}, "k"),
        ("/api/search", {"k": 3}, "query"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]},
         "messages.0.content"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}],
                                  "stream": "true"}, "stream"),
    ],
)  # fmt: skip
def test_a_mistyped_field_is_a_400_that_names_it(
    client: FlaskClient, path: str, body: dict[str, object], field: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_request"
    assert f"{field}:" in error["message"], error["message"]


def test_unknown_fields_are_ignored(client: FlaskClient) -> None:
    response = client.post("/api/search", json={"query": "install", "colour": "red"})
    assert response.status_code == 404  # got past validation: the collection is missing
    assert response.get_json()["error"]["code"] == "collection_not_found"


@pytest.mark.parametrize("path", ["/api/chat", "/api/search", "/v1/chat/completions"])
def test_every_json_endpoint_has_the_body_limit(path: str, make_settings: MakeSettings) -> None:
    settings = make_settings(server={"max_request_bytes": 2048})
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    client = create_app(settings, services).test_client()
    response = client.post(path, json={"query": "x" * 5000, "question": "x", "messages": []})
    assert response.status_code == 413
    assert "2048 bytes" in response.get_json()["error"]["message"]
