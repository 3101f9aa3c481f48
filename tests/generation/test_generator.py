"""HFGenerator on a tiny Llama built in code (real transformers code)."""

from __future__ import annotations

import itertools
import shutil
import threading
from pathlib import Path

import pytest

from generation.generator import GeneratorLoadError, PromptTooLongError
from generation.loading import find_gguf, load_causal_lm
from generation.local import HFGenerator, opening_tokens, plain_prompt
from retrieval.model_thread import ModelBusyError, ModelThread

pytestmark = pytest.mark.model
MESSAGES = [
    {"role": "system", "content": "answer the question"},
    {"role": "user", "content": "what is ragqa ?"},
]


def test_generates_bounded_text_with_chat_template(tiny_llama: Path, tmp_path: Path) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=7)
    result = generator.generate(MESSAGES)
    assert 1 <= result.completion_tokens <= 7
    assert result.prompt_tokens == generator.count_tokens(MESSAGES) > 5
    # A request may ask for fewer tokens than the configured bound, never more.
    assert generator.generate(MESSAGES, max_new_tokens=3).completion_tokens <= 3
    assert generator.generate(MESSAGES, max_new_tokens=500).completion_tokens <= 7


def test_greedy_generation_is_deterministic(tiny_llama: Path, tmp_path: Path) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=12)
    assert generator.generate(MESSAGES) == generator.generate(MESSAGES)


def test_model_is_shared_safely_across_threads(tiny_llama: Path, tmp_path: Path) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=8)
    expected = generator.generate(MESSAGES)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(generator.generate(MESSAGES)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_prompt_longer_than_the_window_is_a_clear_error(tiny_llama: Path, tmp_path: Path) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=8)
    long = [{"role": "user", "content": "the " * 5000}]
    with pytest.raises(PromptTooLongError, match="4096-token window"):
        generator.generate(long)


def test_model_without_chat_template_uses_a_plain_prompt(tiny_llama: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(tiny_llama, plain)
    for name in ("chat_template.jinja", "chat_template.json"):
        (plain / name).unlink(missing_ok=True)
    config = plain / "tokenizer_config.json"
    import json

    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    generator = HFGenerator(model=str(plain), cache_dir=tmp_path, max_new_tokens=4)
    result = generator.generate(MESSAGES)
    _, tokenizer = generator.loaded()
    assert not tokenizer.chat_template
    prompt = tokenizer(plain_prompt(MESSAGES))["input_ids"]
    assert result.prompt_tokens == generator.count_tokens(MESSAGES) == len(prompt)
    shown = tokenizer.decode(prompt)
    assert shown.startswith("System: answer the question") and shown.endswith("Assistant:")
    assert "User: what is ragqa ?" in shown
    assert result.completion_tokens >= 1


def test_missing_model_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(GeneratorLoadError, match="RAGQA_GENERATOR__MODEL"):
        load_causal_lm(str(tmp_path / "no-such-model"), cache_dir=tmp_path)


def test_find_gguf(tmp_path: Path, tiny_llama: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert find_gguf(str(tmp_path / "m.gguf")) == tmp_path / "m.gguf"
    assert find_gguf(str(tmp_path)) == tmp_path / "m.gguf"
    assert find_gguf(str(tiny_llama)) is None
    assert find_gguf("HuggingFaceTB/SmolLM2-135M-Instruct") is None


def test_generation_stops_at_a_stop_string(tiny_llama: Path, tmp_path: Path) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=24)
    free = generator.generate(MESSAGES)
    words = free.text.split()
    assert len(words) >= 4, free
    stopped = generator.generate(MESSAGES, stop=[words[1]])
    assert stopped.completion_tokens < free.completion_tokens
    assert free.text.startswith(stopped.text.split(words[1])[0].strip())


def test_stream_yields_the_same_text_as_generate(tiny_llama: Path, tmp_path: Path) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=12)
    pieces = list(generator.stream(MESSAGES))
    assert len(pieces) >= 2
    assert "".join(pieces).strip() == generator.generate(MESSAGES).text


def test_a_reply_kept_from_an_opening_starts_otherwise(tiny_llama: Path, tmp_path: Path) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=8)
    _, tokenizer = generator.loaded()
    free = generator.generate(MESSAGES)
    first = opening_tokens(tokenizer, free.text)
    assert first and len(first) <= 2
    kept = generator.generate(MESSAGES, avoid_opening=free.text)
    opened = tokenizer(kept.text, add_special_tokens=False)["input_ids"][0]
    assert kept.text != free.text and opened not in first
    assert "".join(generator.stream(MESSAGES, avoid_opening=free.text)).strip() == kept.text
    assert generator.generate(MESSAGES) == free  # only that call was steered


def test_closing_a_stream_stops_generation_and_frees_the_model(
    tiny_llama: Path, tmp_path: Path
) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=400)
    stream = generator.stream(MESSAGES)
    next(stream)
    stream.close()  # a client that disconnects
    done = threading.Event()

    def later() -> None:
        generator.generate(MESSAGES, max_new_tokens=2)
        done.set()

    threading.Thread(target=later, daemon=True).start()
    assert done.wait(timeout=60), "the lock was not released after the stream closed"


def test_cached_system_prefix_gives_the_same_answers(tiny_llama: Path, tmp_path: Path) -> None:
    cached = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=12)
    plain = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=12,
                        prefix_cache=False)  # fmt: skip
    other = [{"role": "system", "content": "answer briefly"}, MESSAGES[1]]
    for messages in (MESSAGES, other, MESSAGES):
        assert cached.generate(messages) == plain.generate(messages)
        assert "".join(cached.stream(messages)).strip() == plain.generate(messages).text
    assert len(cached._prefixes) == 2  # one KV cache per distinct system message
    assert not plain._prefixes


def test_int8_quantisation_loads_and_generates(tiny_llama: Path, tmp_path: Path) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=6,
                            quantize="int8")  # fmt: skip
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    model, _ = generator.loaded()
    assert any(isinstance(m, Int8Linear) for m in model.modules())
    assert 1 <= generator.generate(MESSAGES).completion_tokens <= 6


def test_bfloat16_weights_load_and_generate(tiny_llama: Path, tmp_path: Path) -> None:
    import torch

    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=6,
                            dtype="bfloat16")  # fmt: skip
    model, _ = generator.loaded()
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert 1 <= generator.generate(MESSAGES).completion_tokens <= 6
    assert "".join(generator.stream(MESSAGES)).strip() == generator.generate(MESSAGES).text


def test_bad_dtype_and_int8_on_half_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype must be one of"):
        HFGenerator(model="any", cache_dir=tmp_path, dtype="float8")
    with pytest.raises(ValueError, match="starts from float32"):
        HFGenerator(model="any", cache_dir=tmp_path, quantize="int8", dtype="bfloat16")


def test_int8_needs_the_cpu(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CPU only"):
        HFGenerator(model="any", cache_dir=tmp_path, quantize="int8", device="cuda")


def test_requests_beyond_the_waiting_limit_are_turned_away(
    tiny_llama: Path, tmp_path: Path
) -> None:
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=400,
                            model_thread=ModelThread(max_waiting=0))  # fmt: skip
    stream = generator.stream(MESSAGES)
    next(stream)  # generating now, holding the model
    with pytest.raises(ModelBusyError, match="busy"):
        generator.generate(MESSAGES, max_new_tokens=2)
    stream.close()
    assert generator.generate(MESSAGES, max_new_tokens=2).completion_tokens >= 1


def test_all_model_work_runs_on_the_model_thread(tiny_llama: Path, tmp_path: Path) -> None:
    model_thread = ModelThread(name="model")
    generator = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=6,
                            model_thread=model_thread)  # fmt: skip
    model, _ = generator.loaded()
    seen: set[str] = set()
    model.register_forward_pre_hook(lambda *_: seen.add(threading.current_thread().name))
    expected = generator.generate(MESSAGES).text
    callers = [threading.Thread(target=generator.generate, args=(MESSAGES,)) for _ in range(3)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert "".join(generator.stream(MESSAGES)).strip() == expected
    assert seen and all(name.startswith("model") for name in seen), seen
    model_thread.shutdown()


def test_no_repeat_ngrams_keeps_a_looping_model_from_repeating_itself(
    tiny_llama: Path, tmp_path: Path
) -> None:
    def bigrams(generator: HFGenerator) -> list[tuple[int, int]]:
        _, tokenizer = generator.loaded()
        ids = tokenizer(generator.generate(MESSAGES).text, add_special_tokens=False)["input_ids"]
        return list(itertools.pairwise(ids))

    free = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=40)
    looping = bigrams(free)
    assert len(set(looping)) < len(looping)  # a random tiny model repeats itself
    guarded = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=40,
                          no_repeat_ngram_size=2)  # fmt: skip
    assert len(set(bigrams(guarded))) == len(bigrams(guarded))


def test_a_run_of_citation_numbers_stops_generation(tiny_llama: Path, tmp_path: Path) -> None:
    import torch

    from generation.guards import citation_run_criterion

    _, tokenizer = HFGenerator(model=str(tiny_llama), cache_dir=tmp_path).loaded()
    criterion = citation_run_criterion(tokenizer)

    def stops(text: str) -> bool:
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        return bool(criterion(ids, None)[0])

    assert stops("it is a mix of [2] and [3] [4], [5] and [6]")
    assert not stops("it is a mix of [2] and [3] [4].")
    assert not stops("port 8000 [1]. set it [2].")
