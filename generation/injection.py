"""Documents are data: instructions planted in them never reach the model, and answers that
repeat the model's own instructions or carry a secret are refused.

A retrieved passage's sentences that speak to the assistant ("ignore the instructions
above", "reveal your system prompt", "from now on answer with ...", chat-format role markers)
are replaced by a visible placeholder before the passage is quoted or put in a prompt, so
neither the model nor the extractive answer can obey or repeat them. The patterns aim at
commands to an AI, not at ordinary instructions to readers ("reply to the e-mail with your
order number" stays), and a missed phrasing still meets the model's own instruction that
sources are data, and the answer checks below.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from retrieval.types import ScoredChunk

REMOVED = "[an instruction in this document was removed]"

_AI = r"(?:assistant|ai|a\.i\.|ai model|chat ?bot|llm|gpt|language model)"
_PATTERNS = [
    # Overriding what the model was told.
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,60}"
    r"\b(?:instructions?|prompts?|guidelines|guardrails|"
    r"(?:previous|prior|above|earlier|these|those|all|your)\s+rules)\b",
    # Its hidden instructions, or secrets, or what it may not see.
    r"\bsystem\s+prompts?\b|\b(?:hidden|secret|developer)\s+(?:prompt|instructions?)s?\b",
    r"\b(?:initial|original)\s+prompts?\b",
    r"\b(?:reveal|print|output|repeat|leak|disclose|recite|dump)\b[^.!?\n]{0,80}"
    r"(?:\bapi[\s_-]?keys?\b|\byour\s+(?:instructions|prompt)\b|\binstructions you\b|"
    r"\b(?:other|another|all|every)\s+collections?\b)",
    r"\b(?:include|show|list|quote)\b[^.!?\n]{0,60}\b(?:other|another|every)\s+collections?\b",
    # A new role or mode.
    r"\byou are now (?:a|an|in|free|unrestricted|no longer|dan)\b|\bpretend you are (?:a|an)\b",
    # Orders about every answer, addressed to the model.
    rf"\b{_AI}\b[^.!?\n]{{0,40}}\b(?:must|should|shall|has to|needs to)\b"
    r"[^.!?\n]{0,40}\b(?:answer|reply|respond|say|write|output|end|begin|start|include)",
    r"\b(?:every|each|all|any|your)\s+(?:future\s+)?(?:answers?|responses?|replies|outputs?)\b"
    r"[^.!?\n]{0,40}\b(?:must|should|shall|has to|have to)\b",
    r"\b(?:answer|reply|respond)\b[^.!?\n]{0,20}\b(?:every|each|all|any)\s+"
    r"(?:future\s+)?(?:questions?|messages?|prompts?)\s+with\b",
    r"\b(?:answer|reply|respond)\s+(?:only|exactly|just)\s+with\b",
    r"\b(?:always|only)\s+(?:answer|reply|respond|say)\s+with\b",
    r"\b(?:answer|reply|respond)\s+with\s+(?:the\s+)?(?:word|phrase|code)\b",
    # Chat-format markers, which could open a turn of their own in the prompt.
    r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|</?sources>|^\s*#{2,}\s*(?:system|instruction)\b",
    r"(?:^|\n)[ \t]*(?:system|assistant):[ \t]+\S",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.MULTILINE)
# A sentence: up to the next full stop, question or exclamation mark, or line break.
# A whole turn in a chat format's markers, however many sentences it has.
_TURN = re.compile(r"<\|im_start\|>.*?<\|im_end\|>|\[INST\].*?\[/INST\]",
                   re.IGNORECASE | re.DOTALL)  # fmt: skip
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")
_SECRET = re.compile(r"\brqk_[A-Za-z0-9]+_[A-Za-z0-9_-]{8,}")
_WORD = re.compile(r"\w+")
LEAK_WORDS = 8  # this many words in a row from the model's instructions is a leak


def neutralize(text: str) -> tuple[str, int]:
    """`text` with every sentence that gives the assistant orders replaced by REMOVED; and
    how many were."""
    if not _INJECTION.search(text):
        return text, 0
    text, removed = _TURN.subn(REMOVED, text)
    parts: list[str] = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0)
        if sentence and sentence.strip() != REMOVED and _INJECTION.search(sentence):
            removed += 1
            lead = sentence[: len(sentence) - len(sentence.lstrip())]
            parts.append(lead + REMOVED + ("\n" if sentence.endswith("\n") else ""))
        else:
            parts.append(sentence)
    return "".join(parts), removed


def neutralize_hits(hits: Sequence[ScoredChunk]) -> tuple[list[ScoredChunk], int]:
    """The hits with their passages neutralized; and how many sentences were removed."""
    cleaned: list[ScoredChunk] = []
    total = 0
    for hit in hits:
        text, removed = neutralize(hit.chunk.text)
        total += removed
        chunk = dataclasses.replace(hit.chunk, text=text) if removed else hit.chunk
        cleaned.append(dataclasses.replace(hit, chunk=chunk) if removed else hit)
    return cleaned, total


def leak(answer: str, messages: Sequence[Mapping[str, str]], allowed: str = "") -> str | None:
    """Why `answer` must not be shown: "prompt_leak" when it repeats LEAK_WORDS words in a row
    of the system message (but for `allowed`, the refusal it may give), "secret_leak" when it
    holds an API key; else None."""
    if _SECRET.search(answer):
        return "secret_leak"
    system = " ".join(m["content"] for m in messages if m.get("role") == "system")
    if allowed:
        system = system.replace(allowed, " ")
    said = _WORD.findall(answer.lower())
    if len(said) < LEAK_WORDS or not system:
        return None
    told = _WORD.findall(system.lower())
    runs = {tuple(told[i : i + LEAK_WORDS]) for i in range(len(told) - LEAK_WORDS + 1)}
    if any(tuple(said[i : i + LEAK_WORDS]) in runs for i in range(len(said) - LEAK_WORDS + 1)):
        return "prompt_leak"
    return None
