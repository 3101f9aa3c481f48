"""CTranslate2 copies of the generator's weights: converted once from the same checkpoint (a
Hugging Face id, a local folder, or the safetensors folder a GGUF was converted to), and once
per fine-tuned LoRA adapter merged into them, cached under the model cache folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from generation.generator import GeneratorLoadError
from generation.loading import convert_gguf, find_gguf
from retrieval.model_cache import publish, source_key

# Bump when the conversion changes, so stale copies are not reused.
FORMAT = "ct2-1"


def adapter_key(adapter: Path) -> str:
    """The hash of an adapter's files (its contents: a retrained adapter gets a new copy)."""
    digest = hashlib.sha256(FORMAT.encode())
    for file in sorted(p for p in adapter.iterdir() if p.is_file()):
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def prefer_onednn() -> None:
    """Before CTranslate2 loads: multiply with oneDNN, unless the environment chose.

    CTranslate2 multiplies with Intel MKL on Intel CPUs and with oneDNN elsewhere. On an Intel
    Xeon (2 cores, AVX-512) MKL decoded SmolLM2-135M at 17 tokens/s and oneDNN at 33, first
    tokens as fast (float32, bench generation). Read once per process, at its first use."""
    os.environ.setdefault("CT2_USE_MKL", "0")


def _convert(checkpoint: str, output: Path) -> None:
    """TransformersConverter into `output` (float32: the compute type is chosen at load)."""
    prefer_onednn()
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(checkpoint).convert(str(output), force=True)


def _convert_or_explain(source: str, staging: Path) -> None:
    try:
        _convert(source, staging)
    except (OSError, ValueError, KeyError, NotImplementedError) as error:
        raise GeneratorLoadError(
            f"CTranslate2 cannot convert {source!r}: {error}. Set "
            "RAGQA_GENERATOR__BACKEND=transformers to run it with transformers."
        ) from error


def converted(source: str, cache_dir: Path) -> Path:
    """The CTranslate2 folder for checkpoint `source`, converting it the first time."""
    name = Path(source).name or "model"
    target = cache_dir / "ctranslate2" / f"{name}-{source_key(source, FORMAT)}"
    build = partial(_convert_or_explain, source)
    return publish(target, "model.bin", build, f"converting {source} for CTranslate2")


def _merge_and_convert(source: str, adapter: Path, staging: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generation.adapters import peft_quietly

    base = AutoModelForCausalLM.from_pretrained(source, dtype="float32")
    with peft_quietly():
        merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    with tempfile.TemporaryDirectory(prefix=".merged-", dir=staging.parent) as folder:
        merged.save_pretrained(folder)
        AutoTokenizer.from_pretrained(source).save_pretrained(folder)
        _convert(folder, staging)


def merged_adapter(source: str, adapter: Path, cache_dir: Path) -> Path:
    """The CTranslate2 folder of base `source` with LoRA `adapter` merged into its weights,
    built once per adapter content."""
    target = cache_dir / "ctranslate2" / "adapters" / f"{adapter.name}-{adapter_key(adapter)}"
    what = f"merging adapter {adapter.name} and converting it for CTranslate2"
    return publish(target, "model.bin", partial(_merge_and_convert, source, adapter), what)


@dataclass(frozen=True)
class Checkpoint:
    """What decoding needs from a checkpoint besides its weights."""

    source: str  # the Hugging Face id or folder converted (adapters merge into it)
    tokenizer: Any
    window: int  # its own maximum sequence length
    end_ids: list[int]
    sampling: dict[str, Any]  # its generation config's top-k and top-p
    suppressed: list[list[str]]  # tokens its generation config never lets it produce


def read_checkpoint(model: str, cache_dir: Path) -> Checkpoint:
    """The tokenizer and generation defaults of `model` (a GGUF converted to safetensors
    first), as transformers' generate() would use them."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    gguf = find_gguf(model)
    source = str(convert_gguf(gguf, cache_dir)) if gguf else model
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise GeneratorLoadError(
            f"Could not load the generator {model!r}: {error}. Set RAGQA_GENERATOR__MODEL to a "
            "Hugging Face model id, a local model folder, or a .gguf file."
        ) from error
    try:
        defaults = GenerationConfig.from_pretrained(source)
    except OSError:
        defaults = GenerationConfig.from_model_config(config)
    ends = tokenizer.eos_token_id if defaults.eos_token_id is None else defaults.eos_token_id
    suppressed = tokenizer.convert_ids_to_tokens(defaults.suppress_tokens or [])
    return Checkpoint(
        source=source, tokenizer=tokenizer,
        window=int(getattr(config, "max_position_embeddings", 2048)),
        end_ids=list(ends) if isinstance(ends, list) else [int(ends)],
        sampling={"sampling_topk": defaults.top_k or 0, "sampling_topp": defaults.top_p or 1.0},
        suppressed=[[token] for token in suppressed],
    )  # fmt: skip


def open_engine(folder: Path, compute_type: str, threads: int) -> Any:
    """A ctranslate2.Generator on the CPU."""
    prefer_onednn()
    import ctranslate2

    return ctranslate2.Generator(str(folder), device="cpu", compute_type=compute_type,
                                 intra_threads=threads)  # fmt: skip
