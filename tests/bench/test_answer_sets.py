"""Answer sets built from files laid out as ../shared/data has them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.answer_sets import python_faq


@pytest.mark.parametrize("limit", [2, 5, 50, None])
def test_the_python_faq_keeps_three_entries_for_examples(tmp_path: Path, limit: int | None) -> None:
    root = tmp_path / "python311_docs"
    root.mkdir()
    rows = [{"question": f"Q{n}?", "answer_rst": f"Answer {n}.\n\nMore.", "file": "faq/general"}
            for n in range(5)]  # fmt: skip
    (root / "python_faq_qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    faq = python_faq(tmp_path, limit)
    asked = [item.question for item in faq.items]
    assert len(asked) == min(limit or 5, 2) and len(set(asked)) == len(asked)
    assert len(faq.examples) == 3
    assert not {e.question for e in faq.examples} & set(asked)  # no example is a test question
