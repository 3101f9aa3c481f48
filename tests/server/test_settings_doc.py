"""docs/configuration.md lists every setting as the code defines it."""

from __future__ import annotations

from pydantic import BaseModel

from server.settings import Settings
from server.settings_doc import PAGE, page_with_reference, settings_reference


def test_the_page_holds_the_current_reference() -> None:
    page = PAGE.read_text(encoding="utf-8")
    assert page == page_with_reference(page), "docs/configuration.md is stale: run `make docs`"


def test_every_setting_is_described_and_listed() -> None:
    reference = settings_reference()
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            for inner, nested in group.model_fields.items():
                assert nested.description, f"{name}.{inner} has no description"
                assert f"`RAGQA_{name.upper()}__{inner.upper()}`" in reference
        else:
            assert field.description, f"{name} has no description"
            assert f"`RAGQA_{name.upper()}`" in reference
    assert "| `RAGQA_RETRIEVAL__MODE` | `hybrid` |" in reference
    assert "| `RAGQA_SERVER__API_KEY` | (none) |" in reference
