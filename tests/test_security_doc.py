"""docs/security.md walks all ten OWASP LLM risks, and every test it names exists."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO

PAGE = REPO / "docs" / "security.md"


def test_every_owasp_item_names_tests_that_exist() -> None:
    text = PAGE.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    items = [s.split()[0] for s in sections]
    assert items == [f"LLM{n:02d}" for n in range(1, 11)], items
    for section in sections:
        named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", section)
        assert named, f"{section.split(chr(10))[0]} names no test"
        for path, name in named:
            tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
            defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert name in defined, f"{path}::{name} does not exist"
