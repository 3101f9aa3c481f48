"""Shared fixtures. Tests run offline: no model or data set is fetched from a hub."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_ragqa_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RAGQA_* variable or .env file of the developer's leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RAGQA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _stop_chroma_systems() -> Iterator[None]:
    """Close the embedded Chroma stores a test opened.

    Chroma keeps every store it opened for the life of the process (a server opens one);
    hundreds of tests would otherwise pile up open files.
    """
    yield
    if "chromadb" in sys.modules:
        from chromadb.api.shared_system_client import SharedSystemClient

        for system in list(SharedSystemClient._identifier_to_system.values()):
            system.stop()
        SharedSystemClient.clear_system_cache()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared evaluation data (RAGQA_TEST_DATA, default ../shared/data beside the repo)."""
    folder = Path(os.environ.get("RAGQA_TEST_DATA", REPO.parent / "shared" / "data"))
    if not folder.is_dir():
        pytest.fail(f"Shared data not found at {folder}; set RAGQA_TEST_DATA to its folder.")
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama chat model saved to a folder (built once per session)."""
    from tests.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random sentence-transformer saved to a folder (built once per session)."""
    from tests.tiny import build_tiny_sentence_transformer

    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny-st"))
