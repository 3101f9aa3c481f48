"""Text generation: the Generator seam, the transformers implementation, and model loading."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Set on the model thread while it runs our work, so nested calls do not wait for themselves.
_inside = threading.local()

Message = Mapping[str, str]


class GeneratorLoadError(Exception):
    """The generator model could not be loaded."""


class GeneratorBusyError(RuntimeError):
    """Too many requests are already waiting for the model."""


class PromptTooLongError(ValueError):
    """The prompt and the answer budget do not fit in the model's context window."""


@dataclass(frozen=True)
class Generation:
    """Generated text and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class Generator(Protocol):
    """Anything that continues a chat."""

    @property
    def context_window(self) -> int:
        """The model's maximum sequence length in tokens (prompt plus answer)."""
        ...

    @property
    def max_new_tokens(self) -> int:
        """The longest answer, in tokens; the prompt must leave room for it."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """How many tokens the prompt for `messages` takes."""
        ...

    def stream(
        self, messages: Sequence[Message], *, max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:  # fmt: skip
        """The reply to `messages`, piece by piece as it is generated."""
        ...

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        """Reply to `messages` in at most `max_new_tokens` tokens, ending early at a `stop` text."""
        ...


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


def convert_gguf(gguf: Path, cache_dir: Path) -> Path:
    """Dequantise a GGUF model once into a safetensors folder under `cache_dir`; return it.

    transformers refuses to save a model loaded from GGUF, so it is rebuilt from its config
    (without the quantization config) and its state dict. The folder appears atomically.
    """
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache_dir / f"{gguf.stem}-{key[:12]}"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to safetensors in %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache_dir))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


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


def _plain_prompt(messages: Sequence[Message]) -> str:
    """A prompt for models without a chat template."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*lines, "Assistant:"])


class HFGenerator:
    """Generates with a transformers causal LM; one model per process, shared by threads."""

    def __init__(
        self,
        *,
        model: str,
        cache_dir: Path,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        threads: int = 0,
        context_window: int | None = None,
        quantize: str = "none",
        dtype: str = "auto",
        prefix_cache: bool = True,
        device: str = "cpu",
        max_waiting: int = 16,
        wait_timeout_s: float = 300.0,
        executor: Executor | None = None,
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
        self._executor = executor
        self._model_id = model
        self._window = context_window
        self._quantize = quantize
        self._cache_dir = cache_dir
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._threads = threads
        self._loaded: tuple[Any, Any] | None = None
        self._prefix_cache = prefix_cache
        # KV caches of recent system messages (the fixed prefix of every prompt), LRU.
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._stops: dict[tuple[str, ...], Any] = {}
        self._load_lock = threading.Lock()
        # One generate() at a time: the model is not re-entrant and the CPU is shared anyway.
        # At most `max_waiting` more wait their turn, each at most `wait_timeout_s`; beyond
        # that a request is turned away at once instead of piling up.
        self._generate_lock = threading.Lock()
        self._seats = threading.BoundedSemaphore(max_waiting + 1)
        self._max_waiting = max_waiting
        self._wait_timeout_s = wait_timeout_s

    def _take_seat(self) -> None:
        """A place in the bounded queue for the model, or GeneratorBusyError at once."""
        if not self._seats.acquire(blocking=False):
            raise GeneratorBusyError(
                f"The model is busy: {self._max_waiting} requests are already waiting. Retry "
                "in a moment, or add servers (or a remote generator) for more throughput."
            )

    @contextlib.contextmanager
    def _seat(self) -> Iterator[None]:
        """Hold a place in the queue while the block runs."""
        self._take_seat()
        try:
            yield
        finally:
            self._seats.release()

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """Hold the model (one generation at a time), waiting at most wait_timeout_s."""
        if not self._generate_lock.acquire(timeout=self._wait_timeout_s):
            raise GeneratorBusyError(
                f"The model stayed busy for {self._wait_timeout_s:g} s; retry later."
            )
        try:
            yield
        finally:
            self._generate_lock.release()

    def _on_model_thread(self, fn: Callable[[], T]) -> T:
        """fn() on the executor's thread, where all model work runs (see server wiring), or
        here without one; waiting at most wait_timeout_s for the thread to be free."""
        if self._executor is None or getattr(_inside, "active", False):
            return fn()
        started = threading.Event()

        def task() -> T:
            started.set()
            _inside.active = True
            try:
                return fn()
            finally:
                _inside.active = False

        future = self._executor.submit(task)
        if not started.wait(self._wait_timeout_s) and future.cancel():
            raise GeneratorBusyError(
                f"The model stayed busy for {self._wait_timeout_s:g} s; retry later."
            )
        return future.result()

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        self._model()

    def loaded(self) -> tuple[Any, Any]:
        """The (model, tokenizer) pair, loading it if needed: for benchmarks and fine-tuning."""
        return self._model()

    def _model(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._loaded is None:
                import torch

                if self._threads > 0:
                    torch.set_num_threads(self._threads)
                self._loaded = self._on_model_thread(self._load)
            return self._loaded

    def _load(self) -> tuple[Any, Any]:
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

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """How many tokens the prompt for `messages` takes."""
        return len(self._encode(messages)["input_ids"][0])

    def _encode(self, messages: Sequence[Message], *, generation_prompt: bool = True) -> Any:
        _, tokenizer = self._model()
        if tokenizer.chat_template:
            return tokenizer.apply_chat_template(
                [dict(m) for m in messages],
                add_generation_prompt=generation_prompt,
                return_tensors="pt",
                return_dict=True,
            )
        return tokenizer(_plain_prompt(messages), return_tensors="pt")

    def _stop_criteria(self, stop: tuple[str, ...]) -> Any:
        """Stopping criteria for `stop` texts, built once; None if the tokenizer cannot do it."""
        if not stop:
            return None
        if stop not in self._stops:
            from transformers import StoppingCriteriaList, StopStringCriteria

            _, tokenizer = self._model()
            try:
                self._stops[stop] = StoppingCriteriaList([StopStringCriteria(tokenizer, stop)])
            except ValueError:  # some tokenizers cannot map their vocabulary to plain strings
                logger.warning("this tokenizer cannot stop at texts; answers are trimmed after")
                self._stops[stop] = None
        return self._stops[stop]

    @property
    def max_new_tokens(self) -> int:
        """The longest answer, in tokens."""
        return self._max_new_tokens

    def _cached_prefix(self, messages: Sequence[Message], input_ids: Any) -> Any | None:
        """A copy of the KV cache of the prompt's system message, computed once per distinct
        system message; None when it does not apply. Call with the generate lock held."""
        model, tokenizer = self._model()
        if not (self._prefix_cache and tokenizer.chat_template and len(messages) > 1
                and messages[0]["role"] == "system"):  # fmt: skip
            return None
        import torch

        prefix = self._encode(messages[:1], generation_prompt=False)["input_ids"][0].to(
            model.device
        )
        n = len(prefix)
        if not 0 < n < input_ids.shape[1] or not torch.equal(input_ids[0, :n], prefix):
            return None  # the template renders the system turn differently in context
        key = tuple(prefix.tolist())
        if key not in self._prefixes:
            with torch.inference_mode():
                self._prefixes[key] = model(input_ids=prefix[None], use_cache=True).cache
            while len(self._prefixes) > 8:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(key)
        return copy.deepcopy(self._prefixes[key])

    def _prepare(
        self, messages: Sequence[Message], max_new_tokens: int | None, stop: Sequence[str]
    ) -> tuple[Any, dict[str, Any]]:
        """Encoded prompt and generate() options, checked against the window."""
        _, tokenizer = self._model()
        budget = min(max_new_tokens or self._max_new_tokens, self._max_new_tokens)
        model, _ = self._model()
        inputs = self._encode(messages).to(model.device)
        prompt_len = int(inputs["input_ids"].shape[1])
        if prompt_len + budget > self.context_window:
            raise PromptTooLongError(
                f"The prompt takes {prompt_len} tokens; with {budget} for the answer it exceeds "
                f"the model's {self.context_window}-token window. Ask a shorter question or "
                "lower RAGQA_RETRIEVAL__TOP_K."
            )
        options: dict[str, Any] = {"do_sample": False, "max_new_tokens": budget, "use_cache": True}
        criteria = self._stop_criteria(tuple(stop))
        if criteria is not None:
            options["stopping_criteria"] = criteria
        if self._temperature > 0:
            options |= {"do_sample": True, "temperature": self._temperature}
        options["pad_token_id"] = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        return inputs, options

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        """Reply to `messages`; greedy unless a temperature is set; bounded in length."""
        import torch

        model, tokenizer = self._model()
        inputs, options = self._prepare(messages, max_new_tokens, stop)
        prompt_len = int(inputs["input_ids"].shape[1])

        def work() -> Any:
            with self._turn(), torch.inference_mode():
                past = self._cached_prefix(messages, inputs["input_ids"])
                if past is not None:
                    options["cache"] = past
                return model.generate(**inputs, **options)

        with self._seat():
            output = self._on_model_thread(work)
        new_tokens = output[0, prompt_len:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        return Generation(text=text, prompt_tokens=prompt_len, completion_tokens=len(new_tokens))

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Reply to `messages` piece by piece. Closing the iterator stops generation early."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        model, tokenizer = self._model()
        inputs, options = self._prepare(messages, max_new_tokens, stop)
        cancelled = threading.Event()

        class _Cancelled(StoppingCriteria):  # type: ignore[misc]
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return cancelled.is_set()

        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=600)  # fmt: skip
        criteria = StoppingCriteriaList([*options.pop("stopping_criteria", []), _Cancelled()])
        failure: list[BaseException] = []
        self._take_seat()

        def run() -> None:
            _inside.active = True
            try:
                if not cancelled.is_set():  # the client may have gone while this waited
                    with self._turn(), torch.inference_mode():
                        past = self._cached_prefix(messages, inputs["input_ids"])
                        if past is not None:
                            options["cache"] = past
                        model.generate(**inputs, **options, streamer=streamer,
                                       stopping_criteria=criteria)  # fmt: skip
            except BaseException as error:  # re-raised in the caller's thread
                failure.append(error)
            finally:
                _inside.active = False
                self._seats.release()
                streamer.end()

        if self._executor is not None:
            done = self._executor.submit(run)
        else:
            worker = threading.Thread(target=run, name="ragqa-generate", daemon=True)
            worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            cancelled.set()
            if self._executor is None:
                worker.join()
            elif done.cancel():  # never started: give its seat back here
                self._seats.release()
            else:
                done.result()
        if failure:
            raise failure[0]
