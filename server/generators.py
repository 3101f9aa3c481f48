"""The generator the settings name: a local model (CTranslate2 or transformers), or an
OpenAI-compatible engine over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from generation.ctranslate import CT2Generator
from generation.generator import Generator, GeneratorBackend
from generation.local import HFGenerator
from generation.remote import OpenAICompatibleGenerator
from retrieval.model_thread import ModelThread
from server.packaged import resolve_generator
from server.settings import Settings


def build_generator(
    settings: Settings,
    *,
    model_thread: Callable[[], ModelThread],
    remote_thread: Callable[[], ModelThread],
    adapters: Callable[[str], Path],
) -> Generator:
    """The configured generator; `model_thread` (the shared one) or `remote_thread` (a thread
    of its own, so remote calls queue alike without holding up the embedder) runs its calls."""
    s = settings.generator
    if s.backend == GeneratorBackend.OPENAI:
        return OpenAICompatibleGenerator(
            base_url=s.base_url or "",
            model=s.model,
            api_key=s.api_key.get_secret_value() if s.api_key else None,
            context_window=s.context_window or 4096,
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            timeout_s=s.timeout_s,
            model_thread=remote_thread(),
        )
    local: dict[str, Any] = {
        "model": resolve_generator(s.model), "cache_dir": settings.model_cache_dir,
        "max_new_tokens": s.max_new_tokens, "temperature": s.temperature,
        "repetition_penalty": s.repetition_penalty, "no_repeat_ngram_size": s.no_repeat_ngram_size,
        "threads": s.threads, "context_window": s.context_window, "quantize": s.quantize,
        "prefix_cache": s.prefix_cache, "model_thread": model_thread(), "adapters": adapters,
    }  # fmt: skip

    def reference() -> HFGenerator:
        return HFGenerator(**local, dtype=s.dtype, device=s.device)

    if s.backend == GeneratorBackend.TRANSFORMERS:
        return reference()
    # Prompt-tuning adapters, which cannot be merged into CTranslate2's weights, fall back.
    return CT2Generator(**local, fallback=reference)
