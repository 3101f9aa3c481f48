"""What a small model adds around its answer, cut away: made-up next turns, copied source
headers, repeated paragraphs; and whether it answered with the refusal sentence."""

from __future__ import annotations

import re

# After a word and a space, as papers cite; not code's "L[0]" or "x = [1, 2]".
_REFERENCE = re.compile(
    r"(?<=[A-Za-z).\]])\s+\[\d{1,3}(?:\s*[,\u2013-]\s*\d{1,3})*\](?:\s+(?=[.,;:]))?"
)


def without_references(text: str) -> str:
    """The text without a source's own reference markers ("[4, 11]" in a paper): in a prompt
    or an answer they would read as citations of passages that were never given."""
    return _REFERENCE.sub("", text).rstrip()


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


# Where a small model stops answering and starts a made-up turn or copies a source header.
# At the very start only a turn label counts ("Sources: ..." can open a real answer).
_RUN_ON = re.compile(
    r"^\s*(?:(?:Question|User|Customer|Q)\s*:|</?sources>)"
    r"|\n\s*(?:(?:Question|Sources?|User|Customer|Q)\s*:|\[\d+\]\s*\([^)\n]*\)\s*\n|</?sources>)",
    re.IGNORECASE,
)


def tidy_answer(text: str) -> str:
    """Cut what small models add after the answer: a made-up next turn, repeated paragraphs."""
    run_on = _RUN_ON.search(text)
    if run_on:
        text = text[: run_on.start()]
    kept: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        if paragraph.strip() and paragraph.strip() not in {k.strip() for k in kept}:
            kept.append(paragraph)
    return "\n\n".join(kept).strip()


def is_refusal(text: str, refusal: str) -> bool:
    """Whether the model answered with the refusal sentence (or only began to)."""
    said, expected = _normalise(text), _normalise(refusal)
    # A truncated refusal ("I could not find the") still counts; a bare "I" does not.
    return expected in said or (len(said) >= 15 and expected.startswith(said))
