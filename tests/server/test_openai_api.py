"""The OpenAI-compatible endpoint, and the remote generator talking to it over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from generation.local import HFGenerator
from generation.rag import Rag, Request
from generation.remote import OpenAICompatibleGenerator, RemoteGeneratorError
from retrieval.model_thread import ModelBusyError, ModelThread
from server.app import create_app
from server.settings import Settings
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator, occupy
from tests.server import live

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}]


@pytest.fixture
def client(services: Services, docs: Path) -> FlaskClient:
    services.ingestor.ingest([docs], collection="docs")
    return create_app(services.settings, services).test_client()


@contextmanager
def serve(services: Services) -> Iterator[str]:
    """The real app on a real socket in a thread; yields its /v1 URL."""
    with live.serve(services) as url:
        yield f"{url}/v1"


def sse_data(body: bytes) -> list[object]:
    return [
        "[DONE]" if line == "data: [DONE]" else json.loads(line[len("data: ") :])
        for line in body.decode().splitlines()
        if line.startswith("data: ")
    ]


def test_models_lists_rag_per_collection_and_the_generator(client: FlaskClient) -> None:
    ids = [m["id"] for m in client.get("/v1/models").get_json()["data"]]
    assert ids == ["ragqa", "ragqa:docs", "generator"]


def test_generator_model_is_a_plain_completion(
    client: FlaskClient, generator: FakeGenerator
) -> None:
    generator.enqueue("Hi there.")
    body = {"model": "generator", "messages": MESSAGES, "max_tokens": 5, "stop": "\n"}
    data = client.post("/v1/chat/completions", json=body).get_json()
    assert data["object"] == "chat.completion" and data["model"] == "generator"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "Hi there."}
    assert data["usage"]["completion_tokens"] == 2
    assert generator.prompts[-1] == MESSAGES and generator.stops[-1] == ("\n",)


def test_ragqa_model_answers_from_a_collection_with_citations(
    client: FlaskClient, generator: FakeGenerator
) -> None:
    generator.enqueue("Run make run to install ragqa [1].")
    messages = [{"role": "user", "content": "How do I install ragqa?"}]
    data = client.post("/v1/chat/completions",
                       json={"model": "ragqa:docs", "messages": messages}).get_json()  # fmt: skip
    assert data["choices"][0]["message"]["content"] == "Run make run to install ragqa [1]."
    assert data["ragqa"]["citations"][0]["source"].endswith("install.md")


def test_streamed_completion_chunks_then_done(
    client: FlaskClient, generator: FakeGenerator
) -> None:
    generator.enqueue("Run make run to install ragqa [1].")
    body = {"model": "ragqa", "messages": [{"role": "user", "content": "Install?"}],
            "stream": True}  # fmt: skip
    events = sse_data(client.post("/v1/chat/completions", json=body).data)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}  # type: ignore[index]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)  # type: ignore[index]
    assert text == "Run make run to install ragqa [1]."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
    assert chunks[-1]["ragqa"]["citations"]  # type: ignore[index]


def test_an_extractive_answer_streams_whole(
    tmp_path: Path, docs: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(home=tmp_path / "h", retrieval={"min_score": 0.0})  # extractive
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    services.ingestor.ingest([docs], collection="docs")
    client = create_app(settings, services).test_client()
    body = {"model": "ragqa", "messages": [{"role": "user", "content": "How to install ragqa?"}],
            "stream": True}  # fmt: skip
    chunks = sse_data(client.post("/v1/chat/completions", json=body).data)[:-1]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)  # type: ignore[index]
    assert text == chunks[-1]["ragqa"]["answer"] and "[1]" in text  # type: ignore[index]
    assert chunks[-1]["ragqa"]["mode"] == "extractive"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "gpt-9", "messages": [{"role": "user", "content": "q"}]}, 404),
        ({"model": "ragqa", "messages": []}, 400),
        ({"model": "ragqa", "messages": [{"role": "tool", "content": "q"}]}, 400),
        ({"model": "ragqa", "messages": [{"role": "assistant", "content": "q"}]}, 400),
        ({"model": "generator", "messages": MESSAGES, "max_tokens": 0}, 400),
        ({"model": "generator", "messages": MESSAGES, "stop": ["a"] * 5}, 400),
    ],
)
def test_bad_completion_requests(client: FlaskClient, body: dict[str, object], status: int) -> None:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == status
    assert response.get_json()["error"]["message"]


def test_v1_needs_the_api_key_when_one_is_set(tmp_path: Path, make_settings: MakeSettings) -> None:
    settings = make_settings(home=tmp_path, server={"api_key": "k3y"})
    app = create_app(settings, Services(settings, embedder=FakeEmbedder(),
                                        generator=FakeGenerator()))  # fmt: skip
    body = {"model": "generator", "messages": MESSAGES}
    assert app.test_client().post("/v1/chat/completions", json=body).status_code == 401
    ok = app.test_client().post("/v1/chat/completions", json=body,
                                headers={"Authorization": "Bearer k3y"})  # fmt: skip
    assert ok.status_code == 200


def test_remote_generator_over_real_http(services: Services, generator: FakeGenerator) -> None:
    with serve(services) as url:
        remote = OpenAICompatibleGenerator(base_url=url, model="generator", max_new_tokens=32)
        generator.enqueue("Hi there, friend.", "Streamed reply here.")
        assert remote.generate(MESSAGES, stop=["\n"]).text == "Hi there, friend."
        assert generator.prompts[-1] == MESSAGES and generator.stops[-1] == ("\n",)
        pieces = list(remote.stream(MESSAGES))
        assert len(pieces) >= 3 and "".join(pieces) == "Streamed reply here."


def test_remote_generator_drives_rag_with_streaming(
    services: Services, generator: FakeGenerator, docs: Path
) -> None:
    services.ingestor.ingest([docs], collection="docs")
    with serve(services) as url:
        remote = OpenAICompatibleGenerator(base_url=url, model="generator", max_new_tokens=32)
        rag = Rag(searcher=services.retriever, generator=remote)
        generator.enqueue("Run make run to install ragqa [1].")
        events = list(rag.stream(Request("How do I install ragqa?", "docs")))
    assert [e.kind for e in events][:2] == ["retrieval", "token"]
    answer = events[-1].data
    assert answer.text == "Run make run to install ragqa [1]." and not answer.refused
    assert answer.citations[0].source.endswith("install.md")


def test_remote_errors_say_what_to_check(services: Services) -> None:
    unreachable = OpenAICompatibleGenerator(base_url="http://127.0.0.1:9/v1", model="x",
                                            timeout_s=5)  # fmt: skip
    with pytest.raises(RemoteGeneratorError, match="BASE_URL"):
        unreachable.generate(MESSAGES)
    with serve(services) as url:
        wrong = OpenAICompatibleGenerator(base_url=url, model="no-such-model")
        with pytest.raises(RemoteGeneratorError, match="HTTP 404"):
            wrong.generate(MESSAGES)


@pytest.mark.model
def test_remote_generation_equals_local_on_a_tiny_model(
    tiny_llama: Path, tmp_path: Path, settings: Settings
) -> None:
    local = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=12)
    services = Services(settings, embedder=FakeEmbedder(), generator=local)
    with serve(services) as url:
        remote = OpenAICompatibleGenerator(base_url=url, model="generator", max_new_tokens=12)
        assert remote.generate(MESSAGES).text == local.generate(MESSAGES).text
        assert "".join(remote.stream(MESSAGES)).strip() == local.generate(MESSAGES).text


def test_remote_generation_queues_on_its_model_thread_like_local(services: Services) -> None:
    model_thread = ModelThread(max_waiting=0, wait_timeout_s=5)
    release, holder = occupy(model_thread)
    with serve(services) as url:
        remote = OpenAICompatibleGenerator(base_url=url, model="generator",
                                           model_thread=model_thread)  # fmt: skip
        with pytest.raises(ModelBusyError, match="busy"):
            remote.generate(MESSAGES)
        release.set()
        holder.join(5)
        assert remote.generate(MESSAGES).text == "It is in the documents [1]."
