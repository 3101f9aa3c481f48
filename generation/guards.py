"""Decoding guards: stop a small model that has started listing citation numbers ("[4] [5]
[6] [7] [8]") instead of writing; what it wrote before is kept, and verification judges it."""

from __future__ import annotations

import re
from typing import Any

# Five or more markers in a row, with at most "and", commas or spaces between them.
RUNAWAY_CITATIONS = re.compile(r"(?:\[\d+\](?:\s*(?:,|and|;)?\s*)){5,}$")


def ends_in_citation_run(tokenizer: Any, ids: Any, window: int = 24) -> bool:
    """Whether the last `window` token ids decode to text ending in a run of citation markers
    (decoding that many tokens costs far less than a step)."""
    return bool(RUNAWAY_CITATIONS.search(tokenizer.decode(ids[-window:], skip_special_tokens=True)))


def citation_run_criterion(tokenizer: Any, window: int = 24) -> Any:
    """A transformers StoppingCriteria that ends generation at a run of citation markers."""
    import torch
    from transformers import StoppingCriteria

    class _CitationRun(StoppingCriteria):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = [ends_in_citation_run(tokenizer, row, window) for row in input_ids]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return _CitationRun()
