"""Models are built once, in another process, and published whole."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest

from retrieval.model_cache import publish


def write_pid(staging: Path) -> None:
    (staging / "marker").write_text(str(os.getpid()))


def fail(message: str, staging: Path) -> None:
    (staging / "half").write_text("half a model")
    raise ValueError(message)


def die(staging: Path) -> None:
    (staging / "half").write_text("half a model")
    os._exit(9)  # what the kernel's OOM killer leaves: no exception, no clean-up


def test_built_in_another_process_and_published_once(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"
    assert publish(target, "marker", write_pid, "a test model") == target
    builder = int((target / "marker").read_text())
    assert builder != os.getpid()
    publish(target, "marker", write_pid, "a test model")  # there already: not built again
    assert int((target / "marker").read_text()) == builder
    assert [p.name for p in target.parent.iterdir()] == ["m"]  # no staging left


def test_an_error_in_the_build_is_raised_and_nothing_is_published(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"
    with pytest.raises(ValueError, match="cannot convert this") as raised:
        publish(target, "marker", partial(fail, "cannot convert this"), "a test model")
    assert "in fail" in str(raised.value.__cause__)  # where it failed, over there
    assert not target.exists() and not list(target.parent.iterdir())


def test_a_builder_that_dies_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"
    with pytest.raises(RuntimeError, match=r"died.*free memory"):
        publish(target, "marker", die, "a test model")
    assert not target.exists() and not list(target.parent.iterdir())
