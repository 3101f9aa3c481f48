"""The user guide (docs/) asked with the packaged models, as `make run` serves it: no answer
shown is degenerate, every one carries a citation, and extractive answers hold the key phrase
of most gold answers (bench/data/docs_questions.jsonl; `bench answers --set docs` scores them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.answer_sets import user_guide
from bench.answers import has_key_phrase
from generation.citations import parse_citations
from generation.rag import Request
from generation.verification import degenerate
from server.settings import Settings
from server.wiring import Services


def guide(home: Path) -> Services:
    """Default services (answers of at most 96 tokens) with the user guide ingested."""
    settings = Settings(home=home, _env_file=None)
    short = settings.generator.model_copy(update={"max_new_tokens": 96})
    services = Services(settings.model_copy(update={"generator": short}))
    report = services.ingestor.ingest([user_guide(None).paths[0]], collection="docs")
    assert report.files_ok >= 8 and not report.errors
    return services


@pytest.mark.slow
def test_answers_about_the_guide_are_cited_never_degenerate_and_mostly_right(
    tmp_path: Path,
) -> None:
    services = guide(tmp_path / "home")  # one test: each test's Chroma stores are closed after it
    questions = user_guide(25).items  # the seven first
    shown = []
    for item in questions:
        answer = services.rag.answer(Request(item.question, "docs", mode="rag"))
        if not answer.refused:
            assert degenerate(answer.text) is None, (item.question, answer.text)
            assert parse_citations(answer.text), (item.question, answer.text)
            shown.append(answer)
    assert len(shown) >= 0.8 * len(questions)  # refusing everything would be no answer either
    items = user_guide(None).items

    def quoted(question: str) -> str:
        return services.rag.answer(Request(question, "docs", mode="extractive")).text

    right = [has_key_phrase(quoted(i.question), i.key_phrases) for i in items]
    assert sum(right) >= 0.75 * len(items), sum(right)
