"""Fixtures for the server: settings in a temp home, Services with fakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator


@pytest.fixture
def settings(tmp_path: Path, make_settings: MakeSettings) -> Settings:
    # The fake embedder's cosines are not calibrated: no score-based refusal in these tests.
    # They drive the (fake) generator, so rag is their default mode; the server's own default
    # has tests of its own.
    return make_settings(
        home=tmp_path / "home", retrieval={"min_score": 0.0}, answers={"mode": "rag"}
    )


@pytest.fixture
def generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture
def services(settings: Settings, generator: FakeGenerator) -> Services:
    return Services(settings, embedder=FakeEmbedder(), generator=generator)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "install.md").write_text(
        "# Installing\n\nRun make run to install ragqa and start the server.\n"
    )
    (folder / "models.md").write_text(
        "# Models\n\nThe default generator is SmolLM2 and the embedder is MiniLM.\n"
    )
    return folder
