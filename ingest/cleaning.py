"""Normalise extracted text so the same document reads the same whatever its format."""

from __future__ import annotations

import re
import unicodedata

# Spaces that look like a space: no-break, narrow no-break, figure, ideographic and the rest.
_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
# Invisible characters: zero-width, soft hyphen, word joiner, BOM, bidirectional controls.
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# C0/C1 control characters except tab and newline, and lone surrogates (broken extraction).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def normalize_text(text: str) -> str:
    """NFC, one kind of space and newline, no control or invisible characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = unicodedata.normalize("NFC", text)
    text = _SPACES.sub(" ", text)
    text = _INVISIBLE.sub("", text)
    return _CONTROL.sub("", text)
