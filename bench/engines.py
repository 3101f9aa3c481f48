"""The generator backends side by side on the packaged model: transformers (the reference)
against CTranslate2 float32 and int8. Speed on one ~1,000-token RAG prompt (time to the first
token, prefill and decode tokens/s, decode against the bandwidth bound), /api/chat latency over
the same questions through each backend, and greedy answers compared token for token."""

from __future__ import annotations

import json
import multiprocessing
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from bench.report import percentile
from generation.ctranslate import CT2Generator
from generation.generator import Generation, Generator, Message
from server.app import create_app
from server.packaged import resolve_generator
from server.settings import Settings
from server.wiring import Services

Run = Callable[[Callable[[], Any]], Any]


class Recording:
    """A generator, recording the messages and result of each generate call."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.calls: list[tuple[list[Message], Generation]] = []
        self.keys: list[str] = []  # the messages and options of each call

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, messages: Sequence[Message], **kwargs: Any) -> Generation:
        done = self.inner.generate(messages, **kwargs)
        self.calls.append((list(messages), done))
        self.keys.append(repr((list(messages), sorted(kwargs.items()))))
        return done


Timed = tuple[dict[str, float], list[int]]


def _timings(runs: list[tuple[list[float], list[int]]], prompt_tokens: int) -> Timed:
    """Median time to the first token, prefill and decode rates over runs of (seconds from the
    start at which each token came, tokens); and the tokens of the first run."""
    first = statistics.median(stamps[0] for stamps, _ in runs)
    decode = statistics.median((len(s) - 1) / (s[-1] - s[0]) for s, _ in runs)
    return {"time_to_first_token_ms": first * 1000, "prefill_tokens_per_s": prompt_tokens / first,
            "decode_tokens_per_s": decode}, runs[0][1]  # fmt: skip


def ct2_speed(fast: CT2Generator, ids: list[int], new_tokens: int) -> Timed:
    """Timings of exactly `new_tokens` greedy tokens from prompt `ids`, three runs (model
    thread only)."""
    engine, tokenizer = fast.loaded()
    prompt = tokenizer.convert_ids_to_tokens(ids)
    runs = []
    for _ in range(3):
        started, stamps, tokens = time.perf_counter(), [], []
        for step in engine.generate_tokens(prompt, max_length=new_tokens, min_length=new_tokens,
                                           end_token=[]):  # fmt: skip
            stamps.append(time.perf_counter() - started)
            tokens.append(step.token_id)
        runs.append((stamps, tokens))
    return _timings(runs, len(ids))


def long_prompt(
    count: Callable[[list[Message]], int], calls: list[tuple[list[Message], Generation]],
    tokens: int = 1000,
) -> list[Message]:  # fmt: skip
    """A RAG prompt of about `tokens` tokens: the first recorded prompt, its passages followed by
    those of the next prompts, one passage at a time until the count is reached."""
    system, user = calls[0][0][0], calls[0][0][-1]["content"]
    passages = [p for messages, _ in calls[1:] for p in _passages(messages[-1]["content"])]
    messages = [system, {"role": "user", "content": user}]
    for passage in passages:
        if count(messages) >= tokens:
            break
        more = messages[-1]["content"].replace("<sources>\n", f"<sources>\n{passage}\n\n", 1)
        messages[-1] = {"role": "user", "content": more}
    return messages


def _passages(user: str) -> list[str]:
    """The numbered sources of a RAG prompt's user message (the templates' <sources> block)."""
    block = re.search(r"<sources>\n(.*?)\n</sources>", user, re.S)
    return re.split(r"\n\n(?=\[\d+\] )", block.group(1)) if block else []


def ask_over_http(
    services: Services, questions: list[str], collection: str, mode: str = "rag"
) -> list[dict[str, Any]]:
    """Each question through /api/chat over real HTTP, one after another: the reply, and the
    seconds it took under "seconds"."""
    import urllib.request

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, create_app(services.settings, services), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/chat"
    replies = []
    try:
        for question in questions:
            body = json.dumps({"question": question, "collection": collection, "mode": mode})
            headers = {"Content-Type": "application/json"}
            request = urllib.request.Request(url, body.encode(), headers, method="POST")
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=600) as response:
                reply = json.loads(response.read())
            replies.append(reply | {"seconds": time.perf_counter() - started})
    finally:
        server.shutdown()
    return replies


def in_fresh_process(work: Callable[..., Any], *args: Any) -> Any:
    """`work(*args)` in a new Python process where nothing else ran (spawned; `work` must be
    a module-level function).

    Once PyTorch has run multi-threaded work in a process, CTranslate2 decodes slower there (34
    against 20 tokens/s on a 2-core Intel Xeon; not when PyTorch kept one thread); a benchmark
    that runs transformers first measures the faster engines apart, as a server runs them."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(work, *args).result()


def fresh_ct2_speed(
    model: str, cache_dir: Path, ids: list[int], new_tokens: int, quantize: str,
    long_ids: list[int],
) -> dict[str, float]:  # fmt: skip
    """ct2_speed of a new CTranslate2Generator (the model already converted), and the first
    token's time for `long_ids`: run it in_fresh_process."""
    engine = CT2Generator(model=model, cache_dir=cache_dir, quantize=quantize)
    timed = ct2_speed(engine, ids, new_tokens)[0]
    first = ct2_speed(engine, long_ids, 8)[0]["time_to_first_token_ms"]
    return timed | {"long_time_to_first_token_ms": first}


def chat_latencies(services: Services, questions: list[str], collection: str) -> list[float]:
    """Seconds per /api/chat (`rag`) over real HTTP, one question after another."""
    return [r["seconds"] for r in ask_over_http(services, questions, collection)]


def first_difference(tokenizer: Any, expected: str, got: str) -> dict[str, object]:
    """Where two answers part: the token index and the two tokens there."""
    a = tokenizer(expected, add_special_tokens=False)["input_ids"]
    b = tokenizer(got, add_special_tokens=False)["input_ids"]
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

    def token(ids: list[int]) -> str:
        return str(tokenizer.decode(ids[i : i + 1])) if i < len(ids) else "<end>"

    return {"token_index": i, "transformers": token(a), "ctranslate2": token(b),
            "same_prefix": tokenizer.decode(a[:i])[-80:]}  # fmt: skip


def compare_answers(
    reference: Recording, fast: Recording, tokenizer: Any
) -> tuple[dict[str, float], list[dict[str, object]]]:
    """Greedy answers to the same prompts (those both backends were asked): the share
    identical, and where the others first differ."""
    answers = {k: g for k, (_, g) in zip(reference.keys, reference.calls, strict=True)}
    pairs = [(answers[k], g) for k, (_, g) in zip(fast.keys, fast.calls, strict=True)
             if k in answers]  # fmt: skip
    differing = [
        first_difference(tokenizer, a.text, b.text) | {"completion_tokens": a.completion_tokens}
        for a, b in pairs
        if a.text != b.text
    ]
    same = len(pairs) - len(differing)
    return {"equal_prompts": len(pairs), "equal_answer_rate": same / max(len(pairs), 1)}, differing


def ort_genai_speed(source: str, folder: Path, ids: list[int], new_tokens: int) -> Timed | None:
    """ONNX Runtime GenAI, the other engine tried (`pip install '.[engines]'`), as ct2_speed:
    its model built once by its builder from the same safetensors. None when not installed."""
    try:
        import onnxruntime_genai as og
    except ImportError:
        return None
    if not (folder / "genai_config.json").exists():
        cache = str(folder / "cache")
        builder = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", source,
                   "-o", str(folder), "-p", "fp32", "-e", "cpu", "-c", cache]  # fmt: skip
        subprocess.run(builder, check=True, capture_output=True)
    model = og.Model(str(folder))
    runs = []
    for _ in range(3):
        params = og.GeneratorParams(model)
        total = len(ids) + new_tokens
        params.set_search_options(max_length=total, min_length=total, do_sample=False)
        generator = og.Generator(model, params)
        started, stamps, tokens = time.perf_counter(), [], []
        generator.append_tokens(ids)
        while not generator.is_done():
            generator.generate_next_token()
            stamps.append(time.perf_counter() - started)
            tokens.append(int(generator.get_next_tokens()[0]))
        runs.append((stamps, tokens))
    return _timings(runs, len(ids))


def compare_engines(
    settings: Settings, base: Services, on_model: Run, reference: Recording,
    questions: list[str], new_tokens: int, before: dict[str, float], long: list[Message],
) -> tuple[dict[str, float], list[dict[str, object]]]:  # fmt: skip
    """CTranslate2 float32 and int8 beside transformers: speed on the first RAG prompt, the
    same questions through /api/chat, and the answers compared token for token."""
    model = resolve_generator(settings.generator.model)
    made = {q: CT2Generator(model=model,
                            cache_dir=settings.model_cache_dir, model_thread=base.model_thread,
                            max_new_tokens=settings.generator.max_new_tokens, quantize=q)
            for q in ("none", "int8")}  # fmt: skip
    fast = Recording(made["none"])
    services = Services(settings, embedder=base.embedder, generator=fast)
    latencies = chat_latencies(services, questions, "bench")
    ids = made["none"]._encode(reference.calls[0][0])
    long_ids = made["none"]._encode(long)  # time to the first token of ~1,000 tokens
    metrics: dict[str, float] = {"ct2_prompt_tokens": len(ids)}
    tokens: dict[str, list[int]] = {}
    for name, q in (("ct2", "none"), ("ct2_int8", "int8")):
        speed, tokens[name] = on_model(partial(ct2_speed, made[q], ids, new_tokens))
        metrics |= {f"{name}_{k}": v for k, v in speed.items()}
        metrics[f"{name}_decode_speedup"] = (
            speed["decode_tokens_per_s"] / before["float_decode_tokens_per_s"]
        )
        speed, _ = on_model(partial(ct2_speed, made[q], long_ids, 8))
        metrics[f"{name}_long_time_to_first_token_ms"] = speed["time_to_first_token_ms"]
        metrics[f"{name}_long_prefill_tokens_per_s"] = speed["prefill_tokens_per_s"]
        fresh = in_fresh_process(fresh_ct2_speed, model, settings.model_cache_dir, ids,
                                 new_tokens, q, long_ids)  # fmt: skip
        metrics |= {f"{name}_fresh_process_{k}": v for k, v in fresh.items()}
        metrics[f"{name}_fresh_process_decode_over_bound"] = (
            fresh["decode_tokens_per_s"] / before["float_bound_tokens_per_s"]
        )
    source = made["none"].checkpoint().source
    tried = on_model(partial(ort_genai_speed, source, settings.home / "ort-genai", ids, new_tokens))
    if tried is not None:  # the other engine tried, when installed (pyproject's `engines`)
        metrics |= {f"ort_genai_{k}": v for k, v in tried[0].items()}
        metrics["ort_genai_same_tokens_as_ct2"] = float(tried[1] == tokens["ct2"])
        metrics["ort_genai_decode_over_bound"] = (
            tried[0]["decode_tokens_per_s"] / before["float_bound_tokens_per_s"]
        )
    metrics["ct2_decode_over_bound"] = (
        metrics["ct2_decode_tokens_per_s"] / before["float_bound_tokens_per_s"]
    )
    metrics["ct2_first_token_speedup"] = (
        before["float_time_to_first_token_ms"] / metrics["ct2_time_to_first_token_ms"]
    )
    metrics["api_chat_p50_s_ctranslate2"] = percentile(latencies, 50)
    metrics["api_chat_p50_ct2_over_transformers"] = (
        metrics["api_chat_p50_s_ctranslate2"] / before["api_chat_p50_s_transformers"]
    )
    _, tokenizer = made["none"].loaded()
    equal, differing = compare_answers(reference, fast, tokenizer)
    return {f"ct2_{k}": v for k, v in equal.items()} | metrics, differing
