"""The helpers the speed and peer benchmarks build their prompts and scores with."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.answers import contains
from bench.engines import long_prompt
from bench.peer import _f1, _prompts


def _rag(question: str, *passages: str) -> list[dict[str, str]]:
    sources = "\n\n".join(f"[{i}] (doc{i})\n{p}" for i, p in enumerate(passages, start=1))
    user = f"Sources:\n<sources>\n{sources}\n</sources>\n\nQuestion: {question}"
    return [{"role": "system", "content": "Answer."}, {"role": "user", "content": user}]


def test_a_long_prompt_grows_by_whole_passages_inside_the_sources() -> None:
    calls: list[Any] = [
        (_rag("first?", "alpha"), None),
        (_rag("second?", "beta gamma", "delta"), None),
    ]

    def words(messages: list[Any]) -> int:
        return len(" ".join(m["content"] for m in messages).split())

    grown = long_prompt(words, calls, tokens=14)
    user = grown[-1]["content"]
    assert words(grown) >= 14
    assert user.endswith("Question: first?") and "second?" not in user  # one question only
    assert "[1] (doc1)\nbeta gamma" in user and user.index("beta") < user.index("</sources>")
    assert long_prompt(words, calls, tokens=1) == calls[0][0]  # already long enough: unchanged
    everything = long_prompt(words, calls, tokens=10_000)
    assert "delta" in everything[-1]["content"]  # runs out of passages without failing


def test_peer_scores_leave_citation_markers_out_and_match_prompts_to_questions() -> None:
    assert _f1("Wuhan [1].", "Wuhan") == 1.0
    assert contains("It began in  WUHAN, China.", "wuhan, china")
    assert not contains("anything", "")

    recorded = SimpleNamespace(calls=[(_rag("second?", "b"), None)])
    prompts = _prompts(recorded, ["first?", "second?"])  # type: ignore[arg-type]
    assert prompts[0] == "" and "Question: second?" in prompts[1]
