"""Shared fixtures. Tests run offline: no model or data set is fetched from a hub."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the session's homes: the converted and exported models (keyed by
    their source's contents) are made once, not once per home (about 10 s each)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def _clean_ragqa_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_model_cache: Path
) -> None:
    """No RAGQA_* variable or .env file of the developer's leaks into a test; every home
    shares the session's model cache (tests of the default remove RAGQA_GENERATOR__CACHE_DIR)."""
    for name in list(os.environ):
        if name.startswith("RAGQA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAGQA_GENERATOR__CACHE_DIR", str(shared_model_cache))
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


MakeSettings = Callable[..., Any]


@pytest.fixture
def make_settings() -> MakeSettings:
    """Settings(**overrides) with nothing read from a .env file (the environment's RAGQA_*
    variables are cleared for every test): `make_settings(home=tmp, server={"api_key": "k"})`."""
    from server.settings import Settings

    def make(**overrides: Any) -> Settings:
        return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]

    return make


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared evaluation data (RAGQA_TEST_DATA, default ../shared/data beside the repo).

    Without it the test is skipped with the reason, so `make test-fast` passes on a clean
    clone; CI sets RAGQA_REQUIRE_TEST_DATA=1 so that a missing folder fails instead.
    """
    folder = Path(os.environ.get("RAGQA_TEST_DATA", REPO.parent / "shared" / "data"))
    if not folder.is_dir():
        reason = f"shared evaluation data not found at {folder}; set RAGQA_TEST_DATA"
        if os.environ.get("RAGQA_REQUIRE_TEST_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One PostgreSQL server for the session (skips where PostgreSQL is not installed)."""
    from tests.postgres import running_postgres

    with running_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """The URL of an empty ragqa database on the session's PostgreSQL server."""
    from tests.postgres import reset

    reset(postgres_server)
    return postgres_server
