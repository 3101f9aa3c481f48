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


def _config(path: Path) -> dict[str, Any]:
    """peft's adapter_config.json of an adapter folder."""
    return dict(json.loads((path / "adapter_config.json").read_text(encoding="utf-8")))


def virtual_tokens(path: object) -> int:
    """The soft-prompt tokens a prompt-learning adapter puts before every input (0 for LoRA or
    no adapter): they take room in the context window the prompt is packed into."""
    if not isinstance(path, Path) or not (path / "adapter_config.json").is_file():
        return 0
    config = _config(path)
    return 0 if config.get("peft_type") == "LORA" else int(config.get("num_virtual_tokens") or 0)


class AdapterSet:
    """The adapters loaded onto one base model. LoRA adapters share one peft model (weights
    injected beside the base's); a prompt-tuning adapter wraps the base on its own."""

    def __init__(self, resolve: Resolve | None) -> None:
        self._resolve = resolve
        self._lora: Any = None
        self._prompts: dict[str, Any] = {}
        self._kinds: dict[str, str] = {}
        self._stamps: dict[str, tuple[tuple[str, int, int], ...]] = {}

    def _load(self, base: Any, name: str) -> None:
        """Load `name` onto `base` (model thread only)."""
        if self._resolve is None:
            raise AdapterUnavailableError(f"No adapters are configured here (asked for {name!r}).")
        path = self._resolve(name)
        self._stamps[name] = files_stamp(path)
        config = _config(path)
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
        if name is not None and name in self._kinds and self._changed(name):
            self.forget(name)  # trained again under the same name since it was loaded
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

    def virtual_tokens(self, name: str | None) -> int:
        """The soft-prompt tokens adapter `name` adds to every input."""
        if name is None or self._resolve is None:
            return 0
        return virtual_tokens(self._resolve(name))

    def _changed(self, name: str) -> bool:
        """Whether the adapter's files on disk differ from those loaded (a stat per call)."""
        assert self._resolve is not None
        return files_stamp(self._resolve(name)) != self._stamps.get(name)

    def forget(self, name: str) -> None:
        """Drop a loaded adapter (deleted, or replaced on disk)."""
        kind = self._kinds.pop(name, None)
        self._stamps.pop(name, None)
        if kind == "lora" and "lora" in self._kinds.values():
            self._lora.delete_adapter(name)
        elif kind == "lora":  # the last one: give the base model its own layers back
            self._lora.unload()
            self._lora = None
        elif kind == "prompt":
            del self._prompts[name]


def files_stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    """The adapter folder's files, with their sizes and modification times."""
    stats = ((f.name, f.stat()) for f in path.iterdir() if f.is_file())
    return tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats))
