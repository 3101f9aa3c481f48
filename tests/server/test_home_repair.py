"""`ragqa serve` repairs what a crash damaged in the home's store before it serves the store
to its workers (repairs rewrite the store's files, which only the owner may do), then every
process reads the repaired store through the home's Chroma server."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.home_store import live_server, lock_store, release_store
from server.cli.serving import share_home_store
from server.settings import Settings
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder
from tests.retrieval.test_recovery import SOURCES, built, damaged  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def test_serve_repairs_the_store_then_shares_it(damaged: Path,  # noqa: F811
                                                make_settings: MakeSettings) -> None:  # fmt: skip
    home = damaged.parent  # the damaged store is home/chroma
    settings = make_settings(home=home, embedder={"model": "fake"})
    services = Services(settings, embedder=FakeEmbedder())
    repaired, stop = share_home_store(services)
    assert repaired == ["docs"] and live_server(settings.chroma_path) is not None
    try:
        read_through_the_server(settings)
    finally:
        stop()
    assert live_server(settings.chroma_path) is None


def read_through_the_server(settings: Settings) -> None:
    # Another process's view: through the home's server, every document, readable.
    reader = Services(settings, embedder=FakeEmbedder())
    assert live_server(settings.chroma_path) is not None
    assert len(reader.index.documents("docs")) == len(SOURCES)
    assert reader.index.query("docs", FakeEmbedder().embed_query("anything"), k=3)
    reader.close()
    with pytest.raises(Exception, match="in use"):  # the server owns the store now
        lock_store(settings.chroma_path, wait_s=0.2, give_way_to_server=False)
    release_store(settings.chroma_path)
