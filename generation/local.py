"""Generation here, with a transformers causal LM, on the model thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from generation.adapters import AdapterSet, Resolve
from generation.generator import (
    AdapterUnavailableError,
    Generation,
    Message,
    answer_budget,
)
from generation.guards import citation_run_criterion
from generation.loading import DTYPES, load_causal_lm, quantize_int8
from generation.prefix_cache import PrefixCache
from retrieval.model_thread import Emit, ModelThread, default_model_thread

logger = logging.getLogger(__name__)


def plain_prompt(messages: Sequence[Message]) -> str:
    """A prompt for models without a chat template."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*lines, "Assistant:"])


def encode_chat(
    tokenizer: Any, messages: Sequence[Message], *, generation_prompt: bool = True,
    tensors: str | None = None,
) -> Any:  # fmt: skip
    """The tokenizer's encoding of `messages` (input_ids, attention_mask): with its chat
    template, else as a plain prompt; `tensors` as the tokenizer's return_tensors."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template([dict(m) for m in messages],
                                             add_generation_prompt=generation_prompt,
                                             return_tensors=tensors, return_dict=True)  # fmt: skip
    return tokenizer(plain_prompt(messages), return_tensors=tensors)


def opening_tokens(tokenizer: Any, text: str) -> list[int]:
    """The token ids a reply opening with `text` starts with (as the first word, or after a
    space): suppressing them at the first step keeps the model from that opening."""
    ids = []
    for variant in (text.lstrip(), " " + text.lstrip()):
        encoded = tokenizer(variant, add_special_tokens=False)["input_ids"]
        if encoded and encoded[0] not in ids:
            ids.append(encoded[0])
    return ids


class HFGenerator:
    """Generates with a transformers causal LM, loaded on first use (or warm_up). Every call
    runs on the model thread, so threads may share one instance."""

    def __init__(
        self,
        *,
        model: str,
        cache_dir: Path,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
        threads: int = 0,
        context_window: int | None = None,
        quantize: str = "none",
        dtype: str = "auto",
        prefix_cache: bool = True,
        device: str = "cpu",
        model_thread: ModelThread | None = None,
        adapters: Resolve | None = None,
    ) -> None:
        if quantize not in ("none", "int8"):
            raise ValueError(f"quantize must be 'none' or 'int8', not {quantize!r}")
        if quantize == "int8" and device != "cpu":
            raise ValueError("int8 dynamic quantisation runs on the CPU only; use device 'cpu'")
        if quantize == "int8" and dtype not in ("auto", "float32"):
            raise ValueError(f"int8 quantisation starts from float32 weights, not {dtype}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        self._dtype = dtype
        self._device = device
        self._model_thread = model_thread or default_model_thread()
        self._model_id = model
        self._window = context_window
        self._quantize = quantize
        self._cache_dir = cache_dir
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        # Decoding guards against loops; off unless set (see bench answers for their effect).
        self._guards: dict[str, Any] = {}
        if repetition_penalty != 1.0:
            self._guards["repetition_penalty"] = repetition_penalty
        if no_repeat_ngram_size:
            self._guards["no_repeat_ngram_size"] = no_repeat_ngram_size
        self._threads = threads
        self._loaded: tuple[Any, Any] | None = None
        self._prefixes = PrefixCache() if prefix_cache else None
        self._stops: dict[tuple[str, ...], Any] = {}
        self._load_lock = threading.Lock()
        self._adapters = AdapterSet(adapters)

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        self._model()

    def loaded(self) -> tuple[Any, Any]:
        """The (model, tokenizer) pair, loading it if needed: for benchmarks and fine-tuning."""
        return self._model()

    def _model(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._model_thread.run(self._load, bounded=False)
            return self._loaded

    def _load(self) -> tuple[Any, Any]:
        if self._threads > 0:
            import torch

            torch.set_num_threads(self._threads)
        model, tokenizer = load_causal_lm(self._model_id, cache_dir=self._cache_dir,
                                          dtype=self._dtype)  # fmt: skip
        model.to(self._device)
        if self._quantize == "int8":
            model = quantize_int8(model)
        return model, tokenizer

    @property
    def context_window(self) -> int:
        """The model's maximum sequence length in tokens."""
        model, _ = self._model()
        native = int(getattr(model.config, "max_position_embeddings", 2048))
        return min(self._window, native) if self._window else native

    @property
    def max_new_tokens(self) -> int:
        """The longest answer, in tokens."""
        return self._max_new_tokens

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """How many tokens the prompt for `messages` takes."""
        return len(self._encode(messages)["input_ids"][0])

    def _encode(self, messages: Sequence[Message], *, generation_prompt: bool = True) -> Any:
        _, tokenizer = self._model()
        return encode_chat(tokenizer, messages, generation_prompt=generation_prompt, tensors="pt")

    def _prefix_ids(self, messages: Sequence[Message], generation_prompt: bool) -> Any:
        return self._encode(messages, generation_prompt=generation_prompt)["input_ids"]

    def _stop_criteria(self, stop: tuple[str, ...]) -> Any:
        """Stopping criteria for `stop` texts and runaway citations, built once."""
        if stop not in self._stops:
            from transformers import StoppingCriteriaList, StopStringCriteria

            _, tokenizer = self._model()
            criteria = [citation_run_criterion(tokenizer)]
            try:
                criteria += [StopStringCriteria(tokenizer, stop)] if stop else []
            except ValueError:  # some tokenizers cannot map their vocabulary to plain strings
                logger.warning("this tokenizer cannot stop at texts; answers are trimmed after")
            self._stops[stop] = StoppingCriteriaList(criteria)
        return self._stops[stop]

    def _prepare(
        self, messages: Sequence[Message], max_new_tokens: int | None, stop: Sequence[str],
        adapter: str | None = None, avoid_opening: str | None = None,
    ) -> tuple[Any, dict[str, Any]]:  # fmt: skip
        """Encoded prompt and generate() options, checked against the window (with the soft
        prompt of a prompt-tuning adapter)."""
        model, tokenizer = self._model()
        inputs = self._encode(messages).to(model.device)
        prompt_len = int(inputs["input_ids"].shape[1]) + self._adapters.virtual_tokens(adapter)
        budget = answer_budget(prompt_len, max_new_tokens, self._max_new_tokens,
                               self.context_window)  # fmt: skip
        options: dict[str, Any] = {"do_sample": False, "max_new_tokens": budget, "use_cache": True,
                                   **self._guards}  # fmt: skip
        criteria = self._stop_criteria(tuple(stop))
        if criteria is not None:
            options["stopping_criteria"] = criteria
        if self._temperature > 0:
            options |= {"do_sample": True, "temperature": self._temperature}
        options["pad_token_id"] = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        if avoid_opening:
            options["begin_suppress_tokens"] = opening_tokens(tokenizer, avoid_opening)
        return inputs, options

    def _run_generate(
        self, messages: Sequence[Message], inputs: Any, options: Any, adapter: str | None
    ) -> Any:
        """model.generate, with the adapter (switched in this same model-thread step), or with
        the cached system prefix of the base model when it applies."""
        import torch

        base, tokenizer = self._model()
        if adapter is not None and self._quantize == "int8":
            raise AdapterUnavailableError(
                "Adapters need the float weights: set RAGQA_GENERATOR__QUANTIZE=none."
            )
        with torch.inference_mode(), self._adapters.using(base, adapter) as model:
            if adapter is None and self._prefixes is not None and tokenizer.chat_template:
                past = self._prefixes.lookup(model, self._prefix_ids, messages,
                                             inputs["input_ids"])  # fmt: skip
                if past is not None:
                    options = {**options, "cache": past}
            return model.generate(**inputs, **options)

    def forget_adapter(self, name: str) -> None:
        """Unload an adapter (deleted, or trained again under the same name)."""
        self._model_thread.run(lambda: self._adapters.forget(name), bounded=False)

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
        adapter: str | None = None,
        avoid_opening: str | None = None,
    ) -> Generation:
        """Reply to `messages`; greedy unless a temperature is set; bounded in length; with the
        fine-tuned `adapter` of that name, if given; not opening with the first token of
        `avoid_opening`."""
        _, tokenizer = self._model()
        inputs, options = self._prepare(messages, max_new_tokens, stop, adapter, avoid_opening)
        prompt_len = int(inputs["input_ids"].shape[1])
        output = self._model_thread.run(
            lambda: self._run_generate(messages, inputs, options, adapter)
        )
        new_tokens = output[0, prompt_len:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        return Generation(text=text, prompt_tokens=prompt_len, completion_tokens=len(new_tokens))

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
        adapter: str | None = None,
        avoid_opening: str | None = None,
    ) -> Iterator[str]:
        """Reply to `messages` piece by piece (with `adapter` and `avoid_opening` as in
        `generate`). Closing the iterator stops generation early."""
        from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

        _, tokenizer = self._model()
        inputs, options = self._prepare(messages, max_new_tokens, stop, adapter, avoid_opening)

        def produce(emit: Emit[str], cancelled: threading.Event) -> None:
            class _Cancelled(StoppingCriteria):  # type: ignore[misc]
                def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                    return cancelled.is_set()

            class _Pieces(TextStreamer):  # type: ignore[misc]
                def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                    if text:
                        emit(text)

            criteria = StoppingCriteriaList([*options.get("stopping_criteria", []), _Cancelled()])
            streamer = _Pieces(tokenizer, skip_prompt=True, skip_special_tokens=True)
            streaming = {**options, "stopping_criteria": criteria, "streamer": streamer}
            self._run_generate(messages, inputs, streaming, adapter)

        yield from self._model_thread.stream(produce)
