"""A small indexed corpus with Q&A pairs about it, served by Services with fake models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator

DOCS = {
    "serving.md": "# Serving\n\nThe server listens on port 8000 by default. Set "
    "RAGQA_SERVER__PORT to change the port.\n",
    "ingesting.md": "# Ingesting\n\nragqa reads text, markdown, HTML, PDF and FAQ files. A "
    "changed file replaces its old version in one step.\n",
    "keys.md": "# Keys\n\nSet RAGQA_SERVER__API_KEY to require a bearer key on every API call.\n",
    "limits.md": "# Limits\n\nUploads are limited to 100 MB per request by default.\n",
    "models.md": "# Models\n\nThe default generator is SmolLM2 and the embedder is MiniLM.\n",
    "chat.md": "# Chat\n\nThe chat page streams answers and shows their sources.\n",
}
PAIRS = [
    ("Which port does the server listen on?", "port 8000", "serving.md"),
    ("Which file types can I ingest?", "text, markdown, HTML, PDF and FAQ files", "ingesting.md"),
    ("How do I require an API key?", "Set RAGQA_SERVER__API_KEY", "keys.md"),
    ("How large may an upload be?", "100 MB per request", "limits.md"),
    ("What is the default generator?", "SmolLM2", "models.md"),
    ("What does the chat page show?", "answers and their sources", "chat.md"),
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "guide"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a, "source": s}) + "\n"
                            for q, a, s in PAIRS))  # fmt: skip
    return path


@pytest.fixture
def generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture
def services(
    tmp_path: Path, make_settings: MakeSettings, corpus: Path, generator: FakeGenerator
) -> Services:
    settings = make_settings(home=tmp_path / "home", retrieval={"min_score": 0.0})
    found = Services(settings, embedder=FakeEmbedder(), generator=generator)
    found.ingestor.ingest([corpus], collection="guide")
    return found
