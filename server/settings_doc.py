"""The settings reference in docs/configuration.md, generated from the settings' own fields and
descriptions: `python -m server.settings_doc` (or `make docs`) rewrites it, and a test fails
when the page and the code drift apart."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from server.settings import Settings

BEGIN = "<!-- settings reference: generated from server/settings.py by `make docs` -->"
END = "<!-- end of settings reference -->"
PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict | list):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is not None:
        return _shown(field.default_factory())  # type: ignore[call-arg]
    return _shown(field.default)


def _table(prefix: str, fields: dict[str, FieldInfo]) -> list[str]:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in fields.items():
        rows.append(f"| `{prefix}{name.upper()}` | {_default(field)} | {field.description} |")
    return rows


def settings_reference() -> str:
    """The markdown tables of every RAGQA_* setting, one section per group."""
    top: dict[str, FieldInfo] = {}
    groups: list[str] = []
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if not (isinstance(group, type) and issubclass(group, BaseModel)):
            top[name] = field
            continue
        summary = " ".join((group.__doc__ or "").split())
        groups += ["", f"### `RAGQA_{name.upper()}__*`", "", summary, ""]
        groups += _table(f"RAGQA_{name.upper()}__", group.model_fields)
    lines = ["### Top level", "", *_table("RAGQA_", top), *groups]
    return "\n".join([BEGIN, "", *lines, "", END])


def page_with_reference(page: str) -> str:
    """The page's text with its reference block replaced by the current one."""
    start, end = page.index(BEGIN), page.index(END) + len(END)
    return page[:start] + settings_reference() + page[end:]


def main() -> int:
    """Rewrite the reference in docs/configuration.md; with --check, exit 1 if it is stale."""
    current = PAGE.read_text(encoding="utf-8")
    wanted = page_with_reference(current)
    if "--check" in sys.argv[1:]:
        return int(current != wanted)
    PAGE.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
