"""Versioned datasets under RAGQA_HOME/datasets/NAME/vN: train, validation and test JSONL files
and a manifest (inputs, counts, split rule, content hash). A build never changes an existing
version: it writes a new one, or reuses the latest when the content is the same."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.records import NAME, DatasetError, Record

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitRule:
    """Records go to a split by the document they come from, never by record: a hash of the
    source decides, so every record of one document lands in the same split."""

    validation: float = 0.1
    test: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not (
            0 <= self.validation < 1 and 0 <= self.test < 1 and self.validation + self.test < 1
        ):
            raise DatasetError("validation and test shares must be in [0, 1) and leave some train.")

    def of(self, key: str) -> str:
        """The split of a document (or of a question, for records without one)."""
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).hexdigest()
        share = int(digest[:12], 16) / 16**12
        return "test" if share < self.test else (
            "validation" if share < self.test + self.validation else "train"
        )  # fmt: skip

    def describe(self) -> str:
        """The rule in words, for the manifest."""
        return (
            f"by source document: sha256('{self.seed}:' + source) as a fraction; below "
            f"{self.test} test, below {self.test + self.validation} validation, else train "
            "(records without a source: by their question)"
        )


@dataclass(frozen=True)
class Dataset:
    """One version of a dataset."""

    name: str
    version: int
    path: Path
    manifest: dict[str, Any]

    @property
    def ref(self) -> str:
        """How to name this version: NAME@vN."""
        return f"{self.name}@v{self.version}"

    def records(self, split: str, *, kind: str | None = None,
                form: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """The records of one split (of one kind and format, if given)."""
        if split not in SPLITS:
            raise DatasetError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
        lines = (self.path / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        found = [json.loads(line) for line in lines if line.strip()]
        return [r for r in found if (kind is None or r["kind"] == kind)
                and (form is None or r["format"] == form)]  # fmt: skip


def template_hash(template: Any) -> str:
    """A fingerprint of a prompt template (a dataclass): records rendered with it go stale
    when it changes."""
    parts = json.dumps(dataclasses.asdict(template), sort_keys=True, default=str)
    return hashlib.sha256(parts.encode()).hexdigest()[:16]


class DatasetStore:
    """The datasets in `root` (RAGQA_HOME/datasets)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        """Every dataset name, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._versions(p.name))

    def _versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = (re.fullmatch(r"v(\d+)", p.name) for p in folder.iterdir())
        whole = (m for m in found if m and (folder / m.group(0) / "manifest.json").is_file())
        return sorted(int(m.group(1)) for m in whole)

    def versions(self, name: str) -> list[Dataset]:
        """Every version of a dataset, oldest first."""
        return [self._open(name, v) for v in self._versions(name)]

    def get(self, ref: str) -> Dataset:
        """NAME (its latest version), NAME@vN, or the path of a version folder."""
        path = Path(ref)
        if (path / "manifest.json").is_file():
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
            return Dataset(manifest["name"], int(manifest["version"]), path, manifest)
        name, _, version = ref.partition("@")
        versions = self._versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none yet"
            raise DatasetError(f"No dataset {name!r} (datasets: {known}); build one with "
                               "`ragqa dataset build`.")  # fmt: skip
        if not version:
            return self._open(name, versions[-1])
        if not re.fullmatch(r"v\d+", version) or int(version[1:]) not in versions:
            raise DatasetError(f"{name!r} has no version {version!r}; it has "
                               f"{', '.join(f'v{v}' for v in versions)}.")  # fmt: skip
        return self._open(name, int(version[1:]))

    def _open(self, name: str, version: int) -> Dataset:
        path = self.root / name / f"v{version}"
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        return Dataset(name, version, path, manifest)

    def write(self, name: str, records: Sequence[Record], manifest: dict[str, Any]) -> Dataset:
        """A new version holding `records` (by their split), or the latest version when its
        content is the same. Written to a temporary folder and renamed into place, so a
        version is whole or absent."""
        if not NAME.match(name):
            raise DatasetError(
                f"Invalid dataset name {name!r}: use letters, digits, '_', '.', '-'."
            )
        files = {split: "".join(_line(r) for r in records if r.split == split) for split in SPLITS}
        content = hashlib.sha256()
        for split in SPLITS:
            content.update(hashlib.sha256(files[split].encode()).digest())
        # The same records rendered for another model or template are another dataset.
        rendered_for = {k: manifest.get(k) for k in ("base_model", "template", "template_hash")}
        content.update(json.dumps(rendered_for, sort_keys=True).encode())
        digest = content.hexdigest()
        versions = self.versions(name)
        if versions and versions[-1].manifest.get("content_hash") == digest:
            return versions[-1]
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=folder))
        try:
            for split, text in files.items():
                (staging / f"{split}.jsonl").write_text(text, encoding="utf-8")
            for number in _after(versions[-1].version if versions else 0):
                full = manifest | {"name": name, "version": number, "content_hash": digest}
                (staging / "manifest.json").write_text(json.dumps(full, indent=2) + "\n")
                try:
                    os.rename(staging, folder / f"v{number}")  # fails if another build took it
                except OSError:
                    continue
                return self._open(name, number)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        raise AssertionError("unreachable")


def _line(record: Record) -> str:
    return json.dumps(record.to_dict(), ensure_ascii=False) + "\n"


def _after(last: int) -> Iterator[int]:
    number = last
    while True:
        number += 1
        yield number
