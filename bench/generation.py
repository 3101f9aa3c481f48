"""Generation speed with the packaged model: prefill and decode tokens/s, time to first token,
decode against the memory-bandwidth bound, bfloat16 and int8 against float32, and /api/chat
against a bare model.generate of the same prompt.

Bandwidth bound: decoding one token reads every weight once, so tokens/s cannot exceed
(copy bandwidth) / (weight bytes). Copy bandwidth is measured here, in the same run, as
STREAM does: bytes read plus bytes written by a large tensor copy, per second.
"""

from __future__ import annotations

import copy
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bench.engines import (
    Recording,
    chat_latencies,
    compare_engines,
    long_prompt,
)
from bench.report import Result, percentile
from generation.generator import Message
from generation.loading import quantize_int8
from generation.local import HFGenerator
from server.app import create_app
from server.packaged import resolve_generator
from server.settings import Settings
from server.wiring import Services

T = TypeVar("T")
OnModel = Callable[[Callable[[], Any]], Any]


def copy_bandwidth(megabytes: int = 512) -> float:
    """Bytes per second moved (read + written) by the best of five large tensor copies."""
    import torch

    source = torch.ones(megabytes * 2**20 // 4, dtype=torch.float32)
    target = torch.empty_like(source)
    best = float("inf")
    for _ in range(6):
        started = time.perf_counter()
        target.copy_(source)
        best = min(best, time.perf_counter() - started)
    return float(2 * source.numel() * 4 / best)


def weight_bytes(model: Any) -> int:
    """Bytes of the weights one decoding step reads (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    for module in model.modules():  # int8 linear layers keep packed weights outside parameters
        if isinstance(module, Int8Linear):
            weight, bias = module._weight_bias()
            total += weight.numel() * weight.element_size()
            total += 0 if bias is None else bias.numel() * bias.element_size()
    return total


def timed_generate(model: Any, inputs: Any, new_tokens: int, pad: int) -> list[float]:
    """Seconds from the start at which each new token was produced (exactly new_tokens)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    stamps: list[float] = []

    class _Stamp(StoppingCriteria):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            stamps.append(time.perf_counter())
            return False

    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                       do_sample=False, pad_token_id=pad,
                       stopping_criteria=StoppingCriteriaList([_Stamp()]))  # fmt: skip
    return [s - started for s in stamps]


def _encode(tokenizer: Any, messages: list[Message]) -> Any:
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )


def _speed(model: Any, inputs: Any, pad: int, new_tokens: int) -> dict[str, float]:
    """Prefill and decode rates, time to first token: median of three runs."""
    runs = [timed_generate(model, inputs, new_tokens, pad) for _ in range(3)]
    prompt = int(inputs["input_ids"].shape[1])
    first = statistics.median(r[0] for r in runs)
    decode = statistics.median((len(r) - 1) / (r[-1] - r[0]) for r in runs)
    return {"prompt_tokens": prompt, "time_to_first_token_ms": first * 1000,
            "prefill_tokens_per_s": prompt / first, "decode_tokens_per_s": decode}  # fmt: skip


def _post(url: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        data = json.loads(response.read())
    return data, time.perf_counter() - started


def _server_overhead(
    services: Services, recorder: Recording, questions: list[str], on_model: OnModel
) -> tuple[float, list[float]]:
    """Median over questions of /api/chat latency (real HTTP) over a bare model.generate of
    the prompt it built, for the same number of new tokens; and the latencies."""
    import torch
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, create_app(services.settings, services), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    model, tokenizer = recorder.inner.loaded()  # type: ignore[attr-defined]
    ratios, latencies = [], []
    try:
        for question in questions:
            url = f"http://127.0.0.1:{server.server_port}/api/chat"
            body = {"question": question, "collection": "bench", "mode": "rag"}
            _, end_to_end = _post(url, body)
            latencies.append(end_to_end)
            messages, produced = recorder.calls[-1][0], recorder.calls[-1][1].completion_tokens
            inputs = _encode(tokenizer, messages)

            def bare(inputs: Any = inputs, n: int = max(produced, 1)) -> float:
                started = time.perf_counter()
                with torch.inference_mode():
                    model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                   pad_token_id=tokenizer.eos_token_id)  # fmt: skip
                return time.perf_counter() - started

            ratios.append(end_to_end / on_model(bare))
    finally:
        server.shutdown()
    return float(statistics.median(ratios)), latencies


def run_generation(*, data: Path, quick: bool) -> Result:
    """Speed of the packaged generator (float32, bfloat16, int8) and the server's overhead.

    Every model computation runs on the services' model thread, as in the server (see
    retrieval.model_thread): from any other thread torch's kernels would get fewer cores.
    """
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        settings = Settings(home=Path(tmp), generator={"backend": "transformers"}, _env_file=None)
        base = Services(settings)

        def on_model(fn: Callable[[], T]) -> T:
            return base.model_thread.run(fn, bounded=False)

        return _measure(data, settings, base, on_model, quick=quick)


def _measure(
    data: Path, settings: Settings, base: Services, on_model: OnModel, *, quick: bool
) -> Result:
    new_tokens = 32 if quick else 64
    recorder = Recording(base.generator)
    services = Services(settings, embedder=base.embedder, generator=recorder)
    model, tokenizer = base.generator.loaded()  # type: ignore[attr-defined]
    lines = (data / "covid_qa" / "covidqa_200423.flat.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines][: 5 if quick else 50]
    files = sorted({data / "covid_qa" / r["document_file"] for r in rows})
    services.ingestor.ingest(files, collection="bench")
    questions = [r["question"] for r in rows]
    # A real RAG prompt: the one /api/chat builds for the first question.
    overhead, latencies = _server_overhead(services, recorder, questions[:5], on_model)
    latencies += chat_latencies(services, questions[5:], "bench")
    calls = [(m, g.completion_tokens) for m, g in recorder.calls[:5]]
    messages = recorder.calls[0][0]
    inputs = _encode(tokenizer, messages)
    bandwidth: float = on_model(copy_bandwidth)
    pad = tokenizer.eos_token_id
    metrics = {"copy_bandwidth_gb_per_s": bandwidth / 1e9}
    variants = {
        "float": model,
        "bf16": on_model(lambda: copy.deepcopy(model).bfloat16()),
        "int8": on_model(lambda: quantize_int8(copy.deepcopy(model))),
    }
    for name, variant in variants.items():
        speed: dict[str, float] = on_model(partial(_speed, variant, inputs, pad, new_tokens))
        size = weight_bytes(variant)
        bound = bandwidth / size
        metrics |= {f"{name}_{k}": v for k, v in speed.items() if k != "prompt_tokens"}
        metrics |= {
            f"{name}_weight_mb": size / 2**20, f"{name}_bound_tokens_per_s": bound,
            f"{name}_decode_over_bound": speed["decode_tokens_per_s"] / bound,
        }  # fmt: skip
        metrics["prompt_tokens"] = speed["prompt_tokens"]
    long = long_prompt(recorder.count_tokens, recorder.calls)
    long_inputs = _encode(tokenizer, long)
    metrics["long_prompt_tokens"] = int(long_inputs["input_ids"].shape[1])
    for name in ("float", "bf16"):  # bfloat16 matrix units (AMX) speed up prefill, where present
        speed = on_model(partial(_speed, variants[name], long_inputs, pad, 8))
        metrics[f"{name}_long_time_to_first_token_ms"] = speed["time_to_first_token_ms"]
    for name in ("bf16", "int8"):
        metrics[f"{name}_decode_speedup"] = (
            metrics[f"{name}_decode_tokens_per_s"] / metrics["float_decode_tokens_per_s"]
        )
        metrics |= on_model(partial(_agreement, name, model, variants[name], tokenizer, calls))
    metrics |= _prefix_cache_gain(recorder.inner, settings, calls, base)  # type: ignore[arg-type]
    metrics["api_chat_over_bare_generate"] = overhead
    metrics["server_overhead"] = overhead - 1
    metrics["api_chat_p50_s_transformers"] = percentile(latencies, 50)
    engines, differing = compare_engines(settings, base, on_model, recorder, questions, new_tokens,
                                      metrics, long)  # fmt: skip
    metrics |= engines
    return Result(
        metrics=metrics,
        context={"generator": settings.generator.model, "new_tokens": new_tokens,
                 "dtype": str(next(model.parameters()).dtype), "questions": len(questions),
                 "ctranslate2_differing_answers": differing,
                 "goals": "decode >= 0.6 x bound; server overhead <= 10%; ctranslate2 answers "
                 "equal on >= 95%; first token <= 1 s"},
    )  # fmt: skip


def _agreement(
    name: str, model: Any, variant: Any, tokenizer: Any, calls: list[tuple[list[Message], int]]
) -> dict[str, float]:
    """How often the variant's greedy answer equals float's, on the recorded prompts."""
    import torch

    same, overlap = 0, 0.0
    for messages, _ in calls:
        inputs = _encode(tokenizer, messages)
        outputs = []
        for lm in (model, variant):
            with torch.inference_mode():
                out = lm.generate(**inputs, max_new_tokens=48, do_sample=False,
                                  pad_token_id=tokenizer.eos_token_id)  # fmt: skip
            outputs.append(out[0, inputs["input_ids"].shape[1] :].tolist())
        same += outputs[0] == outputs[1]
        a, b = set(outputs[0]), set(outputs[1])
        overlap += len(a & b) / max(len(a | b), 1)
    return {f"{name}_same_answer_rate": same / len(calls),
            f"{name}_token_overlap": overlap / len(calls)}  # fmt: skip


def _prefix_cache_gain(
    cached: HFGenerator, settings: Settings, calls: list[tuple[list[Message], int]],
    base: Services,
) -> dict[str, float]:  # fmt: skip
    """Time to the first token of the recorded prompts with and without the system-message
    KV cache (median; the cache is warm after the first prompt)."""
    plain = HFGenerator(model=resolve_generator(settings.generator.model),
                        cache_dir=settings.model_cache_dir, prefix_cache=False,
                        model_thread=base.model_thread)  # fmt: skip
    times: dict[str, list[float]] = {"cached": [], "plain": []}
    for _ in range(2):
        for messages, _ in calls:
            for name, generator in (("cached", cached), ("plain", plain)):
                started = time.perf_counter()
                generator.generate(messages, max_new_tokens=1)
                times[name].append(time.perf_counter() - started)
    cached_s, plain_s = statistics.median(times["cached"]), statistics.median(times["plain"])
    return {"first_token_ms_prefix_cached": cached_s * 1000,
            "first_token_ms_uncached": plain_s * 1000,
            "prefix_cache_speedup": plain_s / cached_s}  # fmt: skip
