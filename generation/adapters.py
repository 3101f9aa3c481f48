"""Fine-tuned adapters (peft) on the one base model: loaded by name on first use, switched per
call. Every call runs on the model thread, so switching and generating are one step and no
request ever runs with another's adapter."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from generation.generator import AdapterUnavailableError

# The name of an adapter -> its folder (peft's adapter_config.json and weights); raises when
# there is none (the server resolves names in RAGQA_HOME/adapters).
Resolve = Callable[[str], Path]


@contextmanager
def peft_quietly() -> Iterator[None]:
    """peft 0.21 still calls transformers' gradient_checkpointing names, deprecated in 5.x: a
    warning users can do nothing about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*gradient_checkpointing.*deprecated", FutureWarning)
        yield


class AdapterSet:
    """The adapters loaded onto one base model. LoRA adapters share one peft model (weights
    injected beside the base's); a prompt-tuning adapter wraps the base on its own."""

    def __init__(self, resolve: Resolve | None) -> None:
        self._resolve = resolve
        self._lora: Any = None
        self._prompts: dict[str, Any] = {}
        self._kinds: dict[str, str] = {}

    def _load(self, base: Any, name: str) -> None:
        """Load `name` onto `base` (model thread only)."""
        if self._resolve is None:
            raise AdapterUnavailableError(f"No adapters are configured here (asked for {name!r}).")
        path = self._resolve(name)
        config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        from peft import PeftModel

        with peft_quietly():
            if config.get("peft_type") == "LORA":
                if self._lora is None:
                    self._lora = PeftModel.from_pretrained(base, path, adapter_name=name)
                else:
                    self._lora.load_adapter(path, adapter_name=name)
                self._lora.eval()
                self._kinds[name] = "lora"
            else:  # prompt learning: virtual tokens before the input, the base untouched
                with self._no_lora():
                    self._prompts[name] = PeftModel.from_pretrained(base, path).eval()
                self._kinds[name] = "prompt"

    def _no_lora(self) -> Any:
        return self._lora.disable_adapter() if self._lora is not None else nullcontext()

    @contextmanager
    def using(self, base: Any, name: str | None) -> Iterator[Any]:
        """The model to call for adapter `name` (None: the base alone), for one call."""
        if name is not None and name not in self._kinds:
            self._load(base, name)
        if name is None:
            with self._no_lora():
                yield base
        elif self._kinds[name] == "lora":
            self._lora.set_adapter(name)
            yield self._lora
        else:
            with self._no_lora(), warnings.catch_warnings():
                # generate() passes position ids, which prompt tuning ignores, as it should.
                warnings.filterwarnings("ignore", "Position ids are not supported", UserWarning)
                yield self._prompts[name]

    def forget(self, name: str) -> None:
        """Drop a loaded adapter (deleted, or replaced on disk)."""
        kind = self._kinds.pop(name, None)
        if kind == "lora":
            self._lora.delete_adapter(name)
        elif kind == "prompt":
            del self._prompts[name]
