"""Generation here with CTranslate2: the same weights as the transformers backend, converted
once, decoded by an engine made for it (fused kernels, no per-op Python overhead). Greedy
answers equal transformers' token for token (tests/generation/test_ctranslate.py, bench
generation). Every call runs on the model thread, as with transformers."""

from __future__ import annotations

import logging
import os
import threading
from collections import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.adapters import Resolve, files_stamp, virtual_tokens
from generation.ctranslate_models import (
    Checkpoint,
    converted,
    merged_adapter,
    open_engine,
    read_checkpoint,
)
from generation.generator import (
    AdapterUnavailableError,
    Generation,
    Generator,
    Message,
    answer_budget,
)
from generation.guards import ends_in_citation_run
from generation.local import encode_chat, opening_tokens
from retrieval.model_thread import Emit, ModelThread, default_model_thread

logger = logging.getLogger(__name__)
COMPUTE_TYPES = {"none": "float32", "int8": "int8_float32"}
KEEP_ADAPTERS = 2  # merged adapter models kept loaded (each is a whole copy of the model)


@dataclass
class _Model:
    engine: Any  # ctranslate2.Generator
    checkpoint: Checkpoint
    window: int

    @property
    def tokenizer(self) -> Any:
        return self.checkpoint.tokenizer


def stops_here(text: str, last: int, stops: Sequence[str]) -> bool:
    """Whether a stop text overlaps the last `last` characters of `text`: transformers'
    StopStringCriteria rule (an occurrence wholly before the last token does not count)."""
    return any(s in text[max(0, len(text) - last - len(s) + 1) :] for s in stops if s)


class CT2Generator:
    """Generates with CTranslate2 from the configured model's weights (converted on first use
    and cached); fine-tuned LoRA adapters are merged and converted once each. A prompt-tuning
    adapter, which has no weights to merge, is answered by `fallback` (transformers)."""

    def __init__(
        self, *, model: str, cache_dir: Path, max_new_tokens: int = 256,
        temperature: float = 0.0, repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0, threads: int = 0, context_window: int | None = None,
        quantize: str = "none", prefix_cache: bool = False,
        model_thread: ModelThread | None = None, adapters: Resolve | None = None,
        fallback: Callable[[], Generator] | None = None,
    ) -> None:  # fmt: skip
        if quantize not in COMPUTE_TYPES:
            raise ValueError(f"quantize must be 'none' or 'int8', not {quantize!r}")
        self._model_id = model
        self._cache_dir = cache_dir
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._penalties = {"repetition_penalty": repetition_penalty,
                           "no_repeat_ngram_size": no_repeat_ngram_size}  # fmt: skip
        self._threads = threads or len(os.sched_getaffinity(0))
        self._window = context_window
        self._compute_type = COMPUTE_TYPES[quantize]
        self._prefix_cache = prefix_cache
        self._model_thread = model_thread or default_model_thread()
        self._resolve = adapters
        self._fallback_factory = fallback
        self._fallback: Generator | None = None
        self._loaded: _Model | None = None
        self._load_lock = threading.Lock()
        self._merged: dict[str, tuple[Any, Any]] = {}  # name -> (files stamp, engine)

    def warm_up(self) -> None:
        """Load (converting the first time) now rather than on the first question."""
        self._model()

    def loaded(self) -> tuple[Any, Any]:
        """The (ctranslate2.Generator, tokenizer) pair, loading it if needed: for benchmarks."""
        model = self._model()
        return model.engine, model.tokenizer

    def checkpoint(self) -> Checkpoint:
        """The checkpoint converted (its tokenizer, generation defaults, source folder)."""
        return self._model().checkpoint

    def _model(self) -> _Model:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._model_thread.run(self._load, bounded=False)
            return self._loaded

    def _engine(self, folder: Path) -> Any:
        return open_engine(folder, self._compute_type, self._threads)

    def _load(self) -> _Model:
        checkpoint = read_checkpoint(self._model_id, self._cache_dir)
        native = checkpoint.window
        return _Model(engine=self._engine(converted(checkpoint.source, self._cache_dir)),
                      checkpoint=checkpoint,
                      window=min(self._window, native) if self._window else native)  # fmt: skip

    @property
    def context_window(self) -> int:
        """The model's maximum sequence length in tokens."""
        return self._model().window

    @property
    def max_new_tokens(self) -> int:
        """The longest answer, in tokens."""
        return self._max_new_tokens

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """How many tokens the prompt for `messages` takes."""
        return len(self._encode(messages))

    def _encode(self, messages: Sequence[Message], generation_prompt: bool = True) -> list[int]:
        encoded = encode_chat(
            self._model().tokenizer, messages, generation_prompt=generation_prompt
        )
        return list(encoded["input_ids"])

    def _static_prompt(self, messages: Sequence[Message], ids: list[int]) -> int:
        """How many leading tokens are the system message's, cached by CTranslate2 across
        calls (0: no prefix cache, or the template renders the system turn otherwise)."""
        if not self._prefix_cache or len(messages) < 2 or messages[0]["role"] != "system":
            return 0
        prefix = self._encode(messages[:1], generation_prompt=False)
        return len(prefix) if 0 < len(prefix) < len(ids) and ids[: len(prefix)] == prefix else 0

    def _is_prompt_tuning(self, adapter: str | None) -> bool:
        """Whether `adapter` is a soft prompt (nothing to merge: transformers answers it)."""
        if adapter is None or self._resolve is None:
            return False
        return virtual_tokens(self._resolve(adapter)) > 0

    def _other(self, adapter: str) -> Generator:
        if self._fallback_factory is None:
            raise AdapterUnavailableError(
                f"Adapter {adapter!r} is prompt tuning, which CTranslate2 cannot run: set "
                "RAGQA_GENERATOR__BACKEND=transformers to serve it."
            )
        if self._fallback is None:
            self._fallback = self._fallback_factory()
        logger.info("adapter %s is prompt tuning, which CTranslate2 cannot merge: answering "
                    "with transformers", adapter)  # fmt: skip
        return self._fallback

    def _adapter_engine(self, name: str) -> Any:
        """The merged model of LoRA adapter `name` (model thread only)."""
        if self._resolve is None:
            raise AdapterUnavailableError(f"No adapters are configured here (asked for {name!r}).")
        path = self._resolve(name)
        stamp = files_stamp(path)
        if name not in self._merged or self._merged[name][0] != stamp:
            self._merged.pop(name, None)
            engine = self._engine(
                merged_adapter(self._model().checkpoint.source, path, self._cache_dir)
            )
            self._merged[name] = (stamp, engine)
            while len(self._merged) > KEEP_ADAPTERS:
                self._merged.pop(next(iter(self._merged)))
        self._merged[name] = self._merged.pop(name)  # most recently used last
        return self._merged[name][1]

    def forget_adapter(self, name: str) -> None:
        """Unload an adapter (deleted, or trained again under the same name)."""
        self._model_thread.run(lambda: self._merged.pop(name, None), bounded=False)
        if self._fallback is not None and hasattr(self._fallback, "forget_adapter"):
            self._fallback.forget_adapter(name)

    def _prepare(
        self, messages: Sequence[Message], max_new_tokens: int | None
    ) -> tuple[list[int], int]:
        ids = self._encode(messages)
        return ids, answer_budget(len(ids), max_new_tokens, self._max_new_tokens,
                                  self.context_window)  # fmt: skip

    def _steps(
        self, engine: Any, prompt: list[str], static: list[str], budget: int, banned: list[int]
    ) -> abc.Generator[Any, None, None]:
        """CTranslate2's steps; a first token in `banned` is replaced by the best other one
        (transformers' begin_suppress_tokens), at the cost of a second prompt pass then only."""
        model = self._model()
        ends, suppressed = model.checkpoint.end_ids, model.checkpoint.suppressed
        options: dict[str, Any] = {"end_token": ends, "static_prompt": static or None,
                                   "suppress_sequences": suppressed or None,
                                   **self._penalties}  # fmt: skip
        if self._temperature > 0:
            options |= model.checkpoint.sampling | {"sampling_temperature": self._temperature}
        steps = engine.generate_tokens(prompt, max_length=budget, **options)
        first = next(steps, None)
        if first is None or first.token_id not in banned:
            if first is not None:
                yield first
                yield from steps
            return
        steps.close()
        avoid = [[model.tokenizer.convert_ids_to_tokens(i)] for i in banned]
        first_options = {**options, "suppress_sequences": [*suppressed, *avoid]}
        first = next(engine.generate_tokens(prompt, max_length=1, **first_options), None)
        if first is None:
            return
        yield first
        if budget > 1 and first.token_id not in ends:
            yield from engine.generate_tokens([*prompt, first.token], max_length=budget - 1,
                                              **options)  # fmt: skip

    def _decode(
        self, messages: Sequence[Message], ids: list[int], budget: int, stop: Sequence[str],
        adapter: str | None, avoid_opening: str | None, emit: Emit[str] | None = None,
        cancelled: threading.Event | None = None,
    ) -> list[int]:  # fmt: skip
        """The new token ids (model thread only), each piece of text emitted as it comes."""
        model = self._model()
        tokenizer = model.tokenizer
        engine = model.engine if adapter is None else self._adapter_engine(adapter)
        cut = self._static_prompt(messages, ids) if adapter is None else 0
        tokens = tokenizer.convert_ids_to_tokens(ids)
        banned = opening_tokens(tokenizer, avoid_opening) if avoid_opening else []
        produced: list[int] = []
        text, sent = "", 0
        steps = self._steps(engine, tokens[cut:], tokens[:cut], budget, banned)
        try:
            for step in steps:
                produced.append(step.token_id)
                before, text = text, tokenizer.decode(produced, skip_special_tokens=True)
                if emit is not None and not text.endswith("\ufffd") and len(text) > sent:
                    emit(text[sent:])  # whole characters only: a byte-level token may split one
                    sent = len(text)
                if (
                    cancelled is not None and cancelled.is_set()
                ) or step.token_id in model.checkpoint.end_ids:
                    break
                if stops_here(text, len(text) - len(before), stop) or ends_in_citation_run(
                    tokenizer, [*ids[-24:], *produced]
                ):
                    break
        finally:
            steps.close()
        return produced

    def generate(
        self, messages: Sequence[Message], *, max_new_tokens: int | None = None,
        stop: Sequence[str] = (), adapter: str | None = None, avoid_opening: str | None = None,
    ) -> Generation:  # fmt: skip
        """Reply to `messages`, as HFGenerator.generate does."""
        if self._is_prompt_tuning(adapter):
            assert adapter is not None
            return self._other(adapter).generate(messages, max_new_tokens=max_new_tokens,
                                                 stop=stop, adapter=adapter,
                                                 avoid_opening=avoid_opening)  # fmt: skip
        ids, budget = self._prepare(messages, max_new_tokens)
        produced = self._model_thread.run(
            lambda: self._decode(messages, ids, budget, stop, adapter, avoid_opening)
        )
        text = self._model().tokenizer.decode(produced, skip_special_tokens=True).strip()
        return Generation(text=text, prompt_tokens=len(ids), completion_tokens=len(produced))

    def stream(
        self, messages: Sequence[Message], *, max_new_tokens: int | None = None,
        stop: Sequence[str] = (), adapter: str | None = None, avoid_opening: str | None = None,
    ) -> Iterator[str]:  # fmt: skip
        """Reply to `messages` piece by piece; closing the iterator stops generation."""
        if self._is_prompt_tuning(adapter):
            assert adapter is not None
            yield from self._other(adapter).stream(messages, max_new_tokens=max_new_tokens,
                                                   stop=stop, adapter=adapter,
                                                   avoid_opening=avoid_opening)  # fmt: skip
            return
        ids, budget = self._prepare(messages, max_new_tokens)

        def produce(emit: Emit[str], cancelled: threading.Event) -> None:
            self._decode(messages, ids, budget, stop, adapter, avoid_opening, emit, cancelled)

        yield from self._model_thread.stream(produce)
