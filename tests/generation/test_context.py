"""The context budget: history bounds, packing best first, errors when nothing fits."""

from __future__ import annotations

import pytest

from generation.context import bound_history, pack_prompt
from generation.generator import PromptTooLongError
from generation.prompts import TemplateLibrary
from retrieval.types import Chunk, ScoredChunk
from tests.fakes import FakeGenerator

DOCS = TemplateLibrary().get("docs")
COUNT = FakeGenerator().count_tokens


def hit(name: str, words: int, score: float = 0.5) -> ScoredChunk:
    return ScoredChunk(Chunk(id=name, text=f"{name} " * words, source=f"/{name}.md"), score)


def turns(n: int) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn{i} " * 10}
            for i in range(n)]  # fmt: skip


def test_history_keeps_the_most_recent_whole_turns() -> None:
    history = turns(6)  # 14 tokens each with the fake's per-message overhead
    assert bound_history(history, COUNT, 30) == history[-2:]
    assert bound_history(history, COUNT, 0) == []
    assert bound_history(history, COUNT, 10_000) == history


@pytest.mark.parametrize("window", [200, 260, 400, 1000])
def test_packed_prompt_always_fits_and_keeps_the_best_sources(window: int) -> None:
    hits = [hit(f"s{i}", 40, score=1 - i / 10) for i in range(8)]
    packed = pack_prompt(DOCS, "q?", hits, count_tokens=COUNT, window=window, answer_budget=50)
    assert COUNT(packed.messages) == packed.report.prompt_tokens <= window - 50
    used = [h.chunk.id for h in packed.hits]
    assert used == [h.chunk.id for h in hits[: len(used)]]  # a best-first prefix (equal sizes)
    assert [d.chunk_id for d in packed.report.dropped] == [h.chunk.id for h in hits[len(used) :]]
    assert packed.report.used == len(used)


def test_a_smaller_later_source_still_gets_in() -> None:
    hits = [hit("big", 500), hit("small", 10)]
    packed = pack_prompt(DOCS, "q?", hits, count_tokens=COUNT, window=300, answer_budget=50)
    assert [h.chunk.id for h in packed.hits] == ["small"]
    assert packed.report.dropped[0].reason == "does not fit the context window"


def test_oldest_history_goes_first_when_the_question_does_not_fit() -> None:
    packed = pack_prompt(DOCS, "q?", [], count_tokens=COUNT, window=260, answer_budget=50,
                         history=turns(10))  # fmt: skip
    assert packed.report.history_turns_dropped > 0
    assert packed.messages[-2]["content"].startswith("turn9")  # the latest turn survived


def test_nothing_fits_is_a_clear_error() -> None:
    with pytest.raises(PromptTooLongError, match="Ask a shorter question"):
        pack_prompt(DOCS, "word " * 500, [], count_tokens=COUNT, window=300, answer_budget=50)
    with pytest.raises(PromptTooLongError, match="MAX_NEW_TOKENS"):
        pack_prompt(DOCS, "q", [], count_tokens=COUNT, window=50, answer_budget=50)
