"""Supply chain (OWASP LLM03): a model folder that ships its own Python code is refused with a
clear error, and its code never runs (ragqa never passes trust_remote_code); models come from
a hub id, a local folder or a .gguf file, loaded as weights only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from generation.generator import GeneratorLoadError
from generation.loading import load_causal_lm

pytestmark = pytest.mark.model

EVIL = """from pathlib import Path
Path(__file__).with_name("RAN").write_text("remote code ran")
"""


def test_a_model_with_its_own_code_is_refused_and_the_code_never_runs(
    tiny_llama: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "evil-model"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "evil-llama"
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.Evil"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(EVIL)
    with pytest.raises(GeneratorLoadError, match="evil-model"):
        load_causal_lm(str(folder), cache_dir=tmp_path / "cache")
    assert not (folder / "RAN").exists()
    assert not list(Path.home().glob(".cache/huggingface/modules/transformers_modules/evil*"))
