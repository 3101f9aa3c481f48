"""KV caches of recent system messages: every RAG prompt starts with the same one, so its
attention keys and values can be computed once and copied into each generation."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from generation.generator import Message

# Encodes messages to token ids: (messages, generation_prompt) -> tensor of shape (1, n).
Encode = Callable[[Sequence[Message], bool], Any]


class PrefixCache:
    """The KV caches of the last `size` distinct system messages, least recently used out.

    Not thread-safe: use it on the model thread only.
    """

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._caches: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._caches)

    def lookup(
        self, model: Any, encode: Encode, messages: Sequence[Message], input_ids: Any
    ) -> Any | None:
        """A copy of the KV cache of the prompt's system message, computed once per distinct
        system message; None when the prompt does not start with it as encoded alone."""
        if len(messages) < 2 or messages[0]["role"] != "system":
            return None
        import torch

        prefix = encode(messages[:1], False)[0].to(model.device)
        n = len(prefix)
        if not 0 < n < input_ids.shape[1] or not torch.equal(input_ids[0, :n], prefix):
            return None  # the template renders the system turn differently in context
        key = tuple(prefix.tolist())
        if key not in self._caches:
            with torch.inference_mode():
                self._caches[key] = model(input_ids=prefix[None], use_cache=True).cache
            while len(self._caches) > self._size:
                self._caches.popitem(last=False)
        self._caches.move_to_end(key)
        return copy.deepcopy(self._caches[key])
