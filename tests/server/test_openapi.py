"""The API contract: /openapi.json describes every route from the models that validate the
bodies, and schemathesis, driving the real server over HTTP with auth on, finds no 5xx and no
response that breaks its schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from server.access import PUBLIC, RULES
from server.app import create_app
from server.bodies import ChatBody
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.server.live import serve

ADMIN = "0penapi-admin-key"


@pytest.fixture
def guarded(tmp_path: Path, docs: Path, make_settings: MakeSettings) -> Services:
    settings = make_settings(
        home=tmp_path / "home", retrieval={"min_score": 0.0}, answers={"mode": "rag"},
        server={"api_key": ADMIN, "rate_limit_per_minute": 0},
    )  # fmt: skip
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    services.ingestor.ingest([docs], collection=settings.collection)
    services.warm_up()  # ready: /readyz answers 200, not 503
    return services


def test_every_route_is_described_with_its_rule_and_its_body_model(guarded: Services) -> None:
    app = create_app(guarded.settings, guarded)
    client = app.test_client()
    response = client.get("/openapi.json")  # no key: the contract is public
    assert response.status_code == 200
    spec = response.get_json()
    described = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<path:filename>", "{filename}")
        for name in ("name", "job_id", "filename"):
            path = path.replace(f"<{name}>", "{" + name + "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in described, (path, method)
            operation = spec["paths"][path][method.lower()]
            permission = RULES[rule.endpoint].permission
            assert operation["description"] == f"Access: {permission}."
            assert (operation.get("security") == []) == (permission == PUBLIC)
    chat = spec["paths"]["/api/chat"]["post"]
    body = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert spec["components"]["schemas"][body]["properties"].keys() == (
        ChatBody.model_json_schema()["properties"].keys()
    )
    assert "text/event-stream" in chat["responses"]["200"]["content"]


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    guarded: Services, tmp_path: Path
) -> None:
    with serve(guarded) as base:
        assert requests.get(f"{base}/api/collections", timeout=10).status_code == 401
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
             "--header", f"Authorization: Bearer {ADMIN}",
             "--checks", "not_a_server_error,status_code_conformance,"
                         "content_type_conformance,response_schema_conformance",
             "--phases", "examples,coverage,fuzzing", "--max-examples", "40",
             "--workers", "1", "--request-timeout", "60", "--seed", "7",
             "--suppress-health-check", "all", "--no-color"],
            check=False, capture_output=True, text=True, timeout=540, cwd=tmp_path,
        )  # fmt: skip
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "passed" in report.lower()
