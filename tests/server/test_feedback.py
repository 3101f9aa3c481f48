"""Feedback over real HTTP: every answer has an answer_id, a rating stores it with the answer;
and `ragqa feedback list|export|rate`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from server.app import create_app
from server.cli import main
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.server.live import serve


@pytest.fixture
def url(services: Services, docs: Path) -> Iterator[str]:
    services.ingestor.ingest([docs], collection="docs")
    with serve(services) as found:
        yield found


def ask(url: str, **body: object) -> dict[str, object]:
    response = requests.post(f"{url}/api/chat", json={"question": "How to install?", **body},
                             timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    found: dict[str, object] = response.json()
    return found


def test_a_rating_with_a_correction_is_stored_with_the_answer(url: str, services: Services) -> None:
    answer = ask(url, mode="extractive")
    assert isinstance(answer["answer_id"], str) and answer["answer_id"]
    sent = {"answer_id": answer["answer_id"], "rating": "down",
            "correction": "Run `make run`.", "comment": "too long"}  # fmt: skip
    response = requests.post(f"{url}/api/feedback", json=sent, timeout=30)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["rating"] == "down" and stored["correction"] == "Run `make run`."
    assert (stored["question"], stored["answer"], stored["mode"]) == (
        "How to install?", answer["answer"], "extractive",
    )  # fmt: skip
    assert stored["collection"] == "docs" and stored["sources"][0]["source"].endswith(".md")
    assert services.feedback.rated(rating="down")[0].answer_id == answer["answer_id"]


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ({"answer_id": "0" * 32, "rating": "up"}, 404, "answer_not_found", "No answer"),
        ({"rating": "up"}, 400, "bad_request", "answer_id"),
        ({"answer_id": "{id}", "rating": "meh"}, 400, "bad_request", "rating"),
        ({"answer_id": "{id}", "rating": "up", "correction": "x" * 5000}, 400, "bad_request",
         "at most 4000"),
    ],
)  # fmt: skip
def test_bad_feedback_is_a_clear_4xx_and_stores_nothing(
    url: str, services: Services, body: dict[str, str], status: int, code: str, says: str
) -> None:
    answer_id = str(ask(url, mode="extractive")["answer_id"])
    sent = {k: v.replace("{id}", answer_id) for k, v in body.items()}
    response = requests.post(f"{url}/api/feedback", json=sent, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and says in error["message"], error
    assert services.feedback.counts()["up"] == 0


def test_streamed_and_v1_answers_carry_their_answer_id(
    url: str, services: Services, generator: FakeGenerator
) -> None:
    generator.enqueue("Run make run [1].")
    with requests.post(f"{url}/api/chat", json={"question": "How to install?", "stream": True},
                       stream=True, timeout=30) as response:  # fmt: skip
        blocks = response.content.decode().strip().split("\n\n")
    final = json.loads(blocks[-1].split("data: ", 1)[1])
    assert final["answer_id"] and services.feedback.get(final["answer_id"]).mode == "rag"
    generator.enqueue("Run make run [1].")
    body = {"model": "ragqa", "messages": [{"role": "user", "content": "How to install?"}]}
    done = requests.post(f"{url}/v1/chat/completions", json=body, timeout=30).json()
    assert services.feedback.get(done["ragqa"]["answer_id"]).question == "How to install?"


def test_with_recording_off_answers_have_no_id(
    tmp_path: Path, make_settings: MakeSettings, docs: Path
) -> None:
    settings = make_settings(home=tmp_path / "h", feedback={"record_answers": False})
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    services.ingestor.ingest([docs], collection="docs")
    client = create_app(settings, services).test_client()
    answer = client.post("/api/chat", json={"question": "How to install?"}).get_json()
    assert answer["answer_id"] is None and not settings.feedback_path.exists()


def cli(services: Services, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), obj=services)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_rates_lists_and_exports_feedback(
    services: Services, docs: Path, tmp_path: Path
) -> None:
    cli(services, "ingest", str(docs))
    asked = json.loads(cli(services, "ask", "How to install?", "--mode", "extractive", "--json"))
    rated = json.loads(cli(services, "feedback", "rate", asked["answer_id"], "down",
                           "--correction", "Run make run."))  # fmt: skip
    assert rated["rating"] == "down" and rated["answer"] == asked["answer"]
    listed = cli(services, "feedback", "list")
    assert "1 answers recorded; 0 rated up, 1 down." in listed and "Run make run." in listed
    out = tmp_path / "out" / "feedback.jsonl"
    cli(services, "feedback", "export", "--out", str(out))
    [line] = out.read_text().splitlines()
    assert json.loads(line) == rated
    assert cli(services, "feedback", "export", "--rating", "up") == ""
    result = CliRunner().invoke(main, ["feedback", "rate", "nope", "up"], obj=services)
    assert result.exit_code != 0 and "No answer has the id 'nope'" in result.output


def test_compare_answers_one_question_in_several_modes_side_by_side(
    url: str, generator: FakeGenerator
) -> None:
    generator.enqueue("Run make run [1].", "Install it with pip.")
    body = {"question": "How to install?", "modes": ["extractive", "rag", "closed_book"]}
    response = requests.post(f"{url}/api/compare", json=body, timeout=30)
    assert response.status_code == 200, response.text
    answers = response.json()["answers"]
    assert list(answers) == ["extractive", "rag", "closed_book"]
    assert answers["extractive"]["answer"].startswith("Run make run")
    assert answers["rag"]["answer"] == "Run make run [1]."
    assert answers["closed_book"]["answer"] == "Install it with pip."
    assert len({a["answer_id"] for a in answers.values()}) == 3
    bad = requests.post(f"{url}/api/compare", json={"question": "x", "modes": ["nope"]},
                        timeout=30)  # fmt: skip
    assert bad.status_code == 400 and "Unknown mode" in bad.json()["error"]["message"]
