"""API keys with roles and collections: every route's rule, and a reader that can never reach
another collection's text."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from server.access import PUBLIC, RULES
from server.app import create_app
from server.cli.main import main
from server.keys import KeyStore, KeyStoreError
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.server.live import serve

BOOTSTRAP = "b00tstrap-admin-key"


@pytest.fixture
def team(
    tmp_path: Path, docs: Path, make_settings: MakeSettings
) -> tuple[Services, dict[str, str]]:
    """A server with the bootstrap admin key, two collections, and keys of each role."""
    settings = make_settings(home=tmp_path / "home", server={"api_key": BOOTSTRAP},
                             retrieval={"min_score": 0.0}, answers={"mode": "rag"})  # fmt: skip
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    services.ingestor.ingest([docs], collection="alpha")
    beta = tmp_path / "beta"
    beta.mkdir()
    (beta / "secret.md").write_text("# Salaries\n\nThe beta salary band is confidential.\n")
    services.ingestor.ingest([beta], collection="beta")
    secrets = {"admin": BOOTSTRAP}
    for role in ("reader", "writer"):
        _, secrets[role] = services.keys.create(name=role, role=role, collections=["alpha"])
    return services, secrets


def client_for(services: Services) -> FlaskClient:
    return create_app(services.settings, services).test_client()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, URL) of every route, its arguments filled in (collection: beta)."""
    found = []
    for rule in app.url_map.iter_rules():
        url = rule.rule
        for name, value in (("name", "beta"), ("job_id", "0"), ("filename", "secret.md"),
                            ("path:filename", "app.js")):  # fmt: skip
            url = url.replace(f"<{name}>", value)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


def test_keys_are_stored_hashed_shown_once_and_revocable(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    key, secret = store.create(name="support bot", role="reader", collections=["faq", "faq"])
    assert re.fullmatch(rf"rqk_{key.id}_[A-Za-z0-9_-]{{40,}}", secret)
    assert key.collections == ("faq",) and store.verify(secret) == key
    token = secret.split("_", 2)[2]
    assert token.encode() not in (tmp_path / "keys.sqlite").read_bytes()
    assert store.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.verify("rqk_nothing_here") is None and store.verify("") is None
    assert store.required()
    assert store.revoke(key.id).revoked_at is not None
    assert store.verify(secret) is None and store.required()  # revoking never opens the API
    with pytest.raises(KeyStoreError, match="Unknown role"):
        store.create(name="x", role="owner")
    with pytest.raises(KeyStoreError, match="No key 'nope'"):
        store.revoke("nope")


def test_every_route_states_its_rule_and_refuses_who_may_not(
    team: tuple[Services, dict[str, str]],
) -> None:
    services, secrets = team
    app = create_app(services.settings, services)
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(RULES), "every route needs a rule in server.access.RULES"
    body = {"question": "q?", "query": "q", "collection": "beta", "model": "ragqa:beta",
            "messages": [{"role": "user", "content": "q?"}], "answer_id": "0" * 32,
            "rating": "up"}  # fmt: skip
    walked = 0
    with serve(services) as base:  # over real HTTP
        for endpoint, method, url in routes(app):
            if RULES[endpoint].permission == PUBLIC:
                code = requests.request(method, base + url, timeout=60).status_code
                assert code < 400 or (endpoint, code) == ("health.readyz", 503), url
                continue
            walked += 1
            for headers in ({}, bearer("wrong"), bearer("rqk_123456789abc_forged")):
                response = requests.request(method, base + url, json=body, headers=headers,
                                            timeout=60)  # fmt: skip
                assert response.status_code == 401, (url, method, headers)
            # The alpha reader: 403 on every route that writes, manages or names beta; the
            # routes whose collection is found inside them (a job, a rated answer) answer 404
            # for ids that do not exist, and the listings answer with its collections only.
            response = requests.request(method, base + url, json=body, timeout=60,
                                        headers=bearer(secrets["reader"]))  # fmt: skip
            listing = endpoint in {"documents.list_collections", "openai.models"}
            assert response.status_code in ({200} if listing else {403, 404}), (url, method)
            if RULES[endpoint].collection is not None or RULES[endpoint].permission != "read":
                assert response.status_code == 403, (url, method)
    assert walked >= 12


def test_a_reader_never_reaches_another_collections_text(
    team: tuple[Services, dict[str, str]],
) -> None:
    services, secrets = team
    admin, reader = bearer(secrets["admin"]), bearer(secrets["reader"])
    leaks = []
    with serve(services) as base:

        def call(method: str, path: str, **options: object) -> requests.Response:
            return requests.request(method, base + path, timeout=120, **options)  # type: ignore[arg-type]

        def check(route: str, response: requests.Response) -> None:
            if "salary" in response.text or response.status_code != 403:
                leaks.append((route, response.status_code, response.text[:200]))

        ask = {"question": "What is the beta salary band?", "collection": "beta"}
        check("chat", call("POST", "/api/chat", json=ask, headers=reader))
        check("chat stream", call("POST", "/api/chat", json={**ask, "stream": True},
                                  headers=reader))  # fmt: skip
        check("search", call("POST", "/api/search", headers=reader,
                             json={"query": "salary", "collection": "beta"}))  # fmt: skip
        check("compare", call("POST", "/api/compare", json=ask, headers=reader))
        asked = {"model": "ragqa:beta", "messages": [{"role": "user", "content": "salary?"}]}
        check("v1", call("POST", "/v1/chat/completions", headers=reader, json=asked))
        check("documents", call("GET", "/api/collections/beta/documents", headers=reader))
        # An answer from beta, asked by the admin: the reader may not rate it (a rating
        # answers with the question and the answer).
        answered = call("POST", "/api/chat", json=ask, headers=admin).json()
        assert "salary" in str(answered)
        rating = {"answer_id": answered["answer_id"], "rating": "up"}
        check("feedback", call("POST", "/api/feedback", headers=reader, json=rating))
        # A job ingesting into beta: its report names beta's files.
        notes = {"files": ("more.md", io.BytesIO(b"More salary notes."))}
        job = call("POST", "/api/collections/beta/documents?wait=false", headers=admin,
                   files=notes).json()  # fmt: skip
        check("job", call("GET", job["status_url"], headers=reader))
        assert leaks == []
        # What the reader lists is its own collection only.
        mine = call("GET", "/api/collections", headers=reader).json()
        assert [c["name"] for c in mine["collections"]] == ["alpha"]
        # It learns its role, and not the default collection's name, which is not its own.
        assert (mine["role"], mine["may_write"], mine["default"]) == ("reader", False, None)
        models = [m["id"] for m in call("GET", "/v1/models", headers=reader).json()["data"]]
        assert "ragqa:alpha" in models and not any("beta" in m for m in models)
        assert "ragqa" not in models  # the default collection ("docs") is not the reader's
        # In its own collection it reads, and a writer writes but deletes no collection.
        found = call("POST", "/api/search", headers=reader,
                     json={"query": "generator", "collection": "alpha"})  # fmt: skip
        assert found.status_code == 200 and found.json()["hits"]
        writer = bearer(secrets["writer"])
        added = call("POST", "/api/collections/alpha/documents", headers=writer,
                     files={"files": ("hello.md", io.BytesIO(b"Hello."))})  # fmt: skip
        assert added.status_code == 200
        assert call("DELETE", "/api/collections/alpha", headers=writer).status_code == 403


def test_a_revoked_key_stops_at_once_and_no_key_is_needed_without_keys(
    tmp_path: Path, docs: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(home=tmp_path / "home", retrieval={"min_score": 0.0})
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    services.ingestor.ingest([docs], collection="docs")
    client = client_for(services)
    search = {"query": "generator"}
    assert client.post("/api/search", json=search).status_code == 200  # open: no keys yet
    key, secret = services.keys.create(name="ci", role="reader")
    assert client.post("/api/search", json=search).status_code == 401  # a key exists now
    assert client.post("/api/search", json=search, headers=bearer(secret)).status_code == 200
    services.keys.revoke(key.id)
    assert client.post("/api/search", json=search, headers=bearer(secret)).status_code == 401
    assert client.post("/api/search", json=search).status_code == 401  # still closed


def test_keys_from_the_command_line(services: Services) -> None:
    from click.testing import CliRunner

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["keys", *args], obj=services)
        assert result.exit_code == 0, result.output
        return result.stdout

    out = run("create", "--role", "writer", "-c", "handbook", "--name", "docs team")
    secret = out.splitlines()[-1]
    assert "Created writer key" in out and "handbook" in out and secret.startswith("rqk_")
    key = services.keys.verify(secret)
    assert key is not None and key.collections == ("handbook",)
    listed = run("list")
    assert key.id in listed and "active" in listed and secret.split("_", 2)[2] not in listed
    assert "Revoked writer key" in run("revoke", key.id)
    assert "revoked" in run("list")
    failed = CliRunner().invoke(main, ["keys", "revoke", "nope"], obj=services)
    assert failed.exit_code == 1 and "No key 'nope'" in failed.output
