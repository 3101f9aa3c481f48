"""Trained adapters under RAGQA_HOME/adapters/NAME: the peft weights and config, and ragqa.json
(method, base model, dataset and its hash, template, options, metrics). Written whole or not
at all; the default adapter is named in default.json beside them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.records import NAME

INFO = "ragqa.json"


class AdapterError(ValueError):
    """A name that cannot be an adapter's, or one already taken."""


class AdapterNotFoundError(AdapterError):
    """No adapter has this name."""


@dataclass(frozen=True)
class Adapter:
    """One saved adapter."""

    name: str
    path: Path
    info: dict[str, Any]


class AdapterStore:
    """The adapters in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def check_name(self, name: str) -> None:
        """Refuse a name that is not a plain folder name."""
        if not NAME.match(name):
            raise AdapterError(
                f"Invalid adapter name {name!r}: use letters, digits, '_', '.', '-'."
            )

    def check_free(self, name: str) -> None:
        """Refuse a name that is not a plain folder name or that an adapter has."""
        self.check_name(name)
        if (self.root / name).exists():
            raise AdapterError(f"An adapter {name!r} exists: delete it (`ragqa adapters delete "
                               f"{name}`) or choose another name.")  # fmt: skip

    def run_dir(self, name: str) -> Path:
        """Where a run of `name` keeps its checkpoints until it finishes."""
        self.check_name(name)
        return self.root / ".runs" / name

    def names(self) -> list[str]:
        """Every adapter, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / INFO).is_file())

    def get(self, name: str) -> Adapter:
        """The adapter called `name`."""
        path = self.root / name
        if not NAME.match(name) or not (path / INFO).is_file():
            known = ", ".join(self.names()) or "none yet"
            raise AdapterNotFoundError(f"No adapter {name!r} (adapters: {known}); train one with "
                               "`ragqa finetune`.")  # fmt: skip
        return Adapter(name, path, json.loads((path / INFO).read_text(encoding="utf-8")))

    def save(
        self, name: str, model: Any, info: dict[str, Any], *, replace: bool = False
    ) -> Adapter:
        """Save a peft model's adapter with its info, atomically."""
        if not replace:
            self.check_free(name)
        target = self.root / name
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=self.root))
        try:
            model.save_pretrained(staging)
            info = info | {"name": name, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime())}  # fmt: skip
            (staging / INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get(name)

    def delete(self, name: str) -> None:
        """Remove an adapter (and the default, if it was)."""
        found = self.get(name)
        if self.default() == name:
            (self.root / "default.json").unlink()
        shutil.rmtree(found.path)

    def update_info(self, name: str, **parts: Any) -> Adapter:
        """Add to an adapter's info (its evaluations), atomically."""
        found = self.get(name)
        _write_json(found.path / INFO, found.info | parts)
        return self.get(name)

    def promote(self, name: str, verdict: dict[str, Any]) -> None:
        """Make `name` the default adapter (the gate has passed it)."""
        self.get(name)
        _write_json(self.root / "default.json", {"name": name, "verdict": verdict})

    def demote(self) -> str | None:
        """No default adapter any more; return the one that was."""
        was = self.default()
        if was is not None:
            (self.root / "default.json").unlink()
        return was

    def default(self) -> str | None:
        """The promoted adapter's name, if any."""
        marker = self.root / "default.json"
        if not marker.is_file():
            return None
        return str(json.loads(marker.read_text(encoding="utf-8"))["name"])


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)  # a reader sees the old file or the new one
