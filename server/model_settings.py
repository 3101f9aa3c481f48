"""The model sections of the settings: the embedder and the generator (RAGQA_EMBEDDER__*,
RAGQA_GENERATOR__*)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from generation.generator import GeneratorBackend

BUILTIN_EMBEDDER = "builtin:all-MiniLM-L6-v2"
BUILTIN_GENERATOR = "builtin:SmolLM2-135M-Instruct"


class EmbedderSettings(BaseModel):
    """The sentence-transformers model that embeds chunks and questions."""

    model: str = Field(
        default=BUILTIN_EMBEDDER,
        description="A sentence-transformers model id, a local folder, or the packaged default.",
    )
    device: str = Field(default="cpu", description="`cpu`, `cuda`, `mps`.")
    batch_size: int = Field(default=32, ge=1, le=4096, description="Chunks embedded per batch.")
    backend: Literal["torch", "openvino", "openvino-bf16", "onnx", "onnx-int8"] = Field(
        default="openvino-bf16",
        description="What runs the model, from an ONNX export made once: `openvino-bf16` "
        "(OpenVINO in bfloat16 where the CPU computes it natively, AVX-512 BF16 or AMX, else "
        "float32: vectors at cosine >= 0.9999 to torch's, 2x torch on such a CPU), `openvino` "
        "(float32: the same vectors; 1.0-2.2x torch by CPU), `onnx` (ONNX Runtime, float32), "
        "`onnx-int8` (int8 weights: vectors slightly off, a new ingest), or `torch` "
        "(sentence-transformers as is; GPUs). A collection records the backend that embedded "
        "it and refuses questions from one whose vectors differ.",
    )

    @model_validator(mode="after")
    def _onnx_runs_on_the_cpu(self) -> EmbedderSettings:
        if self.device != "cpu" and self.backend != "torch":
            if "backend" in self.model_fields_set:
                raise ValueError(
                    f"the {self.backend} embedder backend runs on the CPU: set "
                    f"RAGQA_EMBEDDER__BACKEND=torch for RAGQA_EMBEDDER__DEVICE={self.device}"
                )
            self.backend = "torch"  # what the device needs
        return self


class GeneratorSettings(BaseModel):
    """The causal language model that writes answers: local (transformers) or remote (any
    OpenAI-compatible chat completions endpoint)."""

    backend: GeneratorBackend = Field(
        default=GeneratorBackend.CTRANSLATE2,
        description="`ctranslate2` runs the model here with CTranslate2 (converted once from the "
        "same weights; equal greedy answers, 2-5x faster on a CPU); `transformers` runs it with "
        "transformers (GPUs, bfloat16; taken when `device` or `dtype` asks for them and the "
        "backend is not set); `openai` calls an OpenAI-compatible endpoint (`base_url`).",
    )
    model: str = Field(
        default=BUILTIN_GENERATOR,
        description="A Hugging Face model id, a local model folder, or a `.gguf` file; with the "
        "`openai` backend, the served model's name.",
    )
    base_url: str | None = Field(
        default=None,
        description="The endpoint's API root, e.g. `http://gpu-box:8000/v1` (`openai` backend).",
    )
    api_key: SecretStr | None = Field(default=None, description="Bearer key for `base_url`.")
    context_window: int | None = Field(
        default=None, ge=256, le=10_000_000,
        description="Window in tokens: by default the local model's own, 4096 for a remote one.",
    )  # fmt: skip
    timeout_s: float = Field(
        default=300.0, gt=0, description="Seconds per request to a remote endpoint."
    )
    quantize: Literal["none", "int8"] = Field(
        default="none",
        description="`int8`: dynamic int8 quantisation of the linear layers (CPU).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description="Weight type of the local model: `auto` keeps the checkpoint's (float32 for "
        "the default model); `bfloat16` halves memory and speeds up decoding (measure quality "
        "first); `float16` on a GPU.",
    )
    device: str = Field(
        default="cpu", description="Where the local model runs: `cpu`, `cuda`, `cuda:1`, `mps`."
    )
    max_waiting: int = Field(
        default=16, ge=0, le=10_000,
        description="Requests that may wait for the model thread (all model work runs there, "
        "one call at a time); more get 503 `busy` at once.",
    )  # fmt: skip
    wait_timeout_s: float = Field(
        default=300.0, gt=0, description="Longest a request waits for the model before 503 `busy`."
    )
    # Off: with a ~90-token system message in a ~1,000-token RAG prompt it saved nothing on a
    # 2-core CPU (first token 886 ms cached vs 858 ms uncached, bench generation).
    prefix_cache: bool = Field(
        default=False,
        description="Keep and reuse the KV cache of the system message (measured no faster on a "
        "2-core CPU with the default prompt; try it with long system prompts).",
    )
    max_new_tokens: int = Field(
        default=256, ge=1, le=4096, description="The longest answer, in tokens."
    )
    temperature: float = Field(
        default=0.0,
        ge=0.0,
        le=2.0,
        description="0 is greedy decoding (the same answer every time).",
    )
    repetition_penalty: float = Field(
        default=1.0, ge=1.0, le=2.0,
        description="Above 1 makes tokens already in the prompt or answer less likely (1 is off).",
    )  # fmt: skip
    no_repeat_ngram_size: int = Field(
        default=0, ge=0, le=64,
        description="Never repeat a run of this many tokens within the answer (0 is off).",
    )  # fmt: skip
    threads: int = Field(
        0, ge=0, le=1024, description="CPU threads for generation; 0 keeps PyTorch's default."
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where GGUF models are converted to safetensors, once; by default "
        "`$RAGQA_HOME/models`.",
    )

    @model_validator(mode="after")
    def _remote_needs_url_and_name(self) -> GeneratorSettings:
        if self.backend == GeneratorBackend.OPENAI:
            if not self.base_url:
                raise ValueError("the openai backend needs RAGQA_GENERATOR__BASE_URL")
            if self.model == BUILTIN_GENERATOR:
                raise ValueError(
                    "the openai backend needs RAGQA_GENERATOR__MODEL set to the served model name"
                )
        wants_torch = self.device != "cpu" or self.dtype not in ("auto", "float32")
        if "backend" not in self.model_fields_set and wants_torch:
            self.backend = GeneratorBackend.TRANSFORMERS  # what the device or dtype needs
        if self.backend == GeneratorBackend.CTRANSLATE2 and self.device != "cpu":
            raise ValueError(
                "the ctranslate2 backend runs on the CPU here: set RAGQA_GENERATOR__BACKEND="
                "transformers for RAGQA_GENERATOR__DEVICE=" + self.device
            )
        if self.backend == GeneratorBackend.CTRANSLATE2 and self.dtype not in ("auto", "float32"):
            raise ValueError(
                "the ctranslate2 backend computes in float32 (or int8 with "
                "RAGQA_GENERATOR__QUANTIZE=int8): set RAGQA_GENERATOR__DTYPE to auto, or "
                "RAGQA_GENERATOR__BACKEND=transformers for " + self.dtype
            )
        if self.quantize == "int8" and self.dtype not in ("auto", "float32"):
            raise ValueError(
                "RAGQA_GENERATOR__QUANTIZE=int8 starts from float32 weights: set "
                "RAGQA_GENERATOR__DTYPE to auto or float32, or quantize to none"
            )
        return self
