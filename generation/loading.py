"""Loading a causal LM: a Hugging Face id, a local folder or a GGUF file, in a chosen dtype.

Fine-tuned adapters (PEFT) are applied here too when that lands: the one place that turns a
setting into model weights.
"""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path
from typing import Any

from generation.generator import GeneratorLoadError
from retrieval.model_cache import publish


def find_gguf(model: str) -> Path | None:
    """The GGUF file `model` names: a .gguf path, or a folder holding one and no config.json."""
    path = Path(model)
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir() and not (path / "config.json").exists():
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
    return None


def _dequantize(gguf: Path, staging: Path) -> None:
    """transformers refuses to save a model loaded from GGUF, so it is rebuilt from its config
    (without the quantization config) and its state dict."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)


def convert_gguf(gguf: Path, cache_dir: Path) -> Path:
    """Dequantise a GGUF model once into a safetensors folder under `cache_dir`; return it."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache_dir / f"{gguf.stem}-{key[:12]}"
    return publish(target, "config.json", partial(_dequantize, gguf),
                   f"converting {gguf.name} to safetensors")  # fmt: skip


DTYPES = ("auto", "float32", "bfloat16", "float16")


def load_causal_lm(model: str, *, cache_dir: Path, dtype: str = "auto") -> tuple[Any, Any]:
    """Load (model, tokenizer) from a Hugging Face id, a local folder, or a GGUF file, with
    weights in `dtype` ("auto": as stored)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_gguf(model)
    source = str(convert_gguf(gguf, cache_dir)) if gguf else model
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except (OSError, ValueError) as error:
        raise GeneratorLoadError(
            f"Could not load the generator {model!r}: {error}. Set RAGQA_GENERATOR__MODEL to a "
            "Hugging Face model id, a local model folder, or a .gguf file."
        ) from error
    lm.eval()
    return lm, tokenizer


def quantize_int8(model: Any) -> Any:
    """The model with its linear layers quantised to int8 (dynamic, CPU inference only)."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    # torch.ao's eager quantisation is deprecated in favour of torchao, but it is still the one
    # with fast int8 CPU kernels (fbgemm) and no compile step.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
