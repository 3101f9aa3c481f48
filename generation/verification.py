"""Checks a generated answer must pass before it is shown: that it says something (not a loop,
a lead-in with nothing after it, or the prompt's scaffolding) and cites only passages it was
given. A failing answer is replaced (see Rag), never shown."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from generation.citations import content_words

_WORD = re.compile(r"\w+")
# The same few characters over and over: "key_key_key_key_key_", "[4] [4] [4] [4] [4]".
_STUTTER = re.compile(r"(.{2,20}?)\1{4,}", re.DOTALL)
# Pieces of the prompt a model copies instead of answering.
_SCAFFOLDING = re.compile(
    r"</?sources>|<\|im_(?:start|end)\|>|^\s*(?:question|context|sources|instruction)\s*:",
    re.IGNORECASE | re.MULTILINE,
)


def degenerate(text: str) -> str | None:
    """Why `text` is no answer at all, or None when it is one."""
    if not content_words(text):
        return "no content words"
    words = _WORD.findall(text.lower())
    grams = Counter(zip(words, words[1:], words[2:], words[3:], strict=False))
    stutters = any(_WORD.search(m.group(1)) for m in _STUTTER.finditer(text))
    if (grams and max(grams.values()) >= 3) or stutters:
        return "a repetition loop"
    if len(words) >= 24 and len(set(words)) < 0.3 * len(words):
        return "a repetition loop"
    if text.rstrip().endswith(":") and len(words) <= 12:
        return "a lead-in with nothing after it"
    if _SCAFFOLDING.search(text):
        return "the prompt's scaffolding echoed back"
    return None


def verify(text: str, invalid_citations: Sequence[int]) -> str | None:
    """Why a generated answer must not be shown, or None when it may."""
    problem = degenerate(text)
    if problem is None and invalid_citations:
        cited = ", ".join(f"[{n}]" for n in invalid_citations)
        problem = f"it cites passages it was not given ({cited})"
    return problem
