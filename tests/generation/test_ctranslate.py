"""CT2Generator against HFGenerator, the reference, on a tiny Llama built in code: the same
greedy tokens, stops, openings, streams, adapters; its own model thread, cache and limits."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from generation.ctranslate import CT2Generator, stops_here
from generation.ctranslate_models import prefer_onednn
from generation.generator import AdapterUnavailableError, PromptTooLongError
from generation.local import HFGenerator
from retrieval.model_thread import ModelBusyError, ModelThread
from tests.tiny import WORDS

pytestmark = pytest.mark.model
MESSAGES = [
    {"role": "system", "content": "answer the question"},
    {"role": "user", "content": "what is ragqa ?"},
]


def prompts(count: int) -> list[list[dict[str, str]]]:
    """`count` different chats of different lengths, with and without a system message."""
    chats = []
    for i in range(count):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(3 + (i * 13) % 60)]
        chat = [{"role": "user", "content": " ".join(words) + " ?"}]
        chats.append(chat if i % 3 else [{"role": "system", "content": WORDS[i % 9]}, *chat])
    return chats


@pytest.fixture(scope="module")
def pair(tiny_llama: Path, shared_model_cache: Path) -> tuple[HFGenerator, CT2Generator]:
    cache = shared_model_cache
    reference = HFGenerator(model=str(tiny_llama), cache_dir=cache, max_new_tokens=24)
    return reference, CT2Generator(model=str(tiny_llama), cache_dir=cache, max_new_tokens=24)


def test_greedy_answers_equal_transformers_token_for_token(
    pair: tuple[HFGenerator, CT2Generator],
) -> None:
    reference, fast = pair
    differing = []
    for messages in prompts(50):
        expected, got = reference.generate(messages), fast.generate(messages)
        if got != expected:
            differing.append((messages, expected, got))
    assert not differing, differing[:3]


def test_stops_at_the_same_token_as_transformers(pair: tuple[HFGenerator, CT2Generator]) -> None:
    reference, fast = pair
    stopped = 0
    for messages in prompts(12):
        words = reference.generate(messages).text.split()
        for stop in {words[1], words[2][:2], " " + words[3]} if len(words) > 3 else ():
            expected = reference.generate(messages, stop=[stop])
            assert fast.generate(messages, stop=[stop]) == expected, stop
            stopped += expected.completion_tokens < 24
    assert stopped >= 10  # the stops did cut answers short


def test_stop_rule_is_transformers_overlap_rule() -> None:
    assert stops_here("a stop", 4, ["stop"])  # the last token is "stop"
    assert stops_here("a stopper", 4, ["stop"])  # "pper" overlaps the end of "stop"
    assert not stops_here("a stop at", 3, ["stop"])  # wholly before the last token
    assert not stops_here("anything", 3, [""])


def test_stream_is_generate_piece_by_piece(pair: tuple[HFGenerator, CT2Generator]) -> None:
    reference, fast = pair
    for messages in prompts(5):
        pieces = list(fast.stream(messages))
        assert len(pieces) >= 2
        assert "".join(pieces).strip() == reference.generate(messages).text


def test_an_avoided_opening_is_avoided_as_transformers_does(
    pair: tuple[HFGenerator, CT2Generator],
) -> None:
    reference, fast = pair
    for messages in prompts(6):
        free = fast.generate(messages)
        kept = reference.generate(messages, avoid_opening=free.text)
        assert kept.text != free.text
        assert fast.generate(messages, avoid_opening=free.text) == kept
        assert "".join(fast.stream(messages, avoid_opening=free.text)).strip() == kept.text
        # an opening the model was not going to take costs nothing and changes nothing
        assert fast.generate(messages, avoid_opening="zzz qqq") == free


@pytest.fixture
def models(shared_model_cache: Path) -> Path:
    """The session's model cache: the tiny model is converted once (in a new process, about
    10 s), not once per test."""
    return shared_model_cache


def test_cached_system_prompt_gives_the_same_answers(tiny_llama: Path, models: Path) -> None:
    cached = CT2Generator(model=str(tiny_llama), cache_dir=models, max_new_tokens=12,
                          prefix_cache=True)  # fmt: skip
    plain = CT2Generator(model=str(tiny_llama), cache_dir=models, max_new_tokens=12)
    assert cached._static_prompt(MESSAGES, cached._encode(MESSAGES)) > 3
    for messages in (*prompts(4), MESSAGES, MESSAGES):
        assert cached.generate(messages) == plain.generate(messages)


def test_converted_once_and_cached(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = CT2Generator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=6)
    answer = first.generate(MESSAGES)
    assert len(list((tmp_path / "ctranslate2").glob("*/model.bin"))) == 1

    def refuse(*args: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr("retrieval.model_cache.build_apart", refuse)
    again = CT2Generator(model=str(tiny_llama), cache_dir=tmp_path, max_new_tokens=6)
    assert again.generate(MESSAGES) == answer
    assert not list((tmp_path / "ctranslate2").glob(".build-*"))  # no staging left


def test_int8_loads_and_generates(tiny_llama: Path, models: Path) -> None:
    generator = CT2Generator(model=str(tiny_llama), cache_dir=models, max_new_tokens=6,
                             quantize="int8")  # fmt: skip
    assert generator.loaded()[0].compute_type == "int8_float32"
    assert 1 <= generator.generate(MESSAGES).completion_tokens <= 6


def test_window_and_bad_settings_are_clear_errors(tiny_llama: Path, models: Path) -> None:
    generator = CT2Generator(model=str(tiny_llama), cache_dir=models, max_new_tokens=8)
    with pytest.raises(PromptTooLongError, match="4096-token window"):
        generator.generate([{"role": "user", "content": "the " * 5000}])
    with pytest.raises(ValueError, match="quantize"):
        CT2Generator(model=str(tiny_llama), cache_dir=models, quantize="int4")


def test_closing_a_stream_stops_generation_and_frees_the_model(
    tiny_llama: Path, models: Path
) -> None:
    generator = CT2Generator(model=str(tiny_llama), cache_dir=models, max_new_tokens=4000)
    generator.warm_up()
    stream = generator.stream([{"role": "user", "content": "the"}])
    next(stream)
    stream.close()  # a client that disconnects
    done = threading.Event()
    threading.Thread(target=lambda: (generator.generate(MESSAGES, max_new_tokens=2),
                                     done.set()), daemon=True).start()  # fmt: skip
    assert done.wait(timeout=30), "the model thread was not freed after the stream closed"


def test_runs_on_the_model_thread_and_turns_away_beyond_the_queue(
    tiny_llama: Path, models: Path
) -> None:
    thread = ModelThread(max_waiting=0, wait_timeout_s=5)
    generator = CT2Generator(model=str(tiny_llama), cache_dir=models, model_thread=thread,
                             max_new_tokens=4000)  # fmt: skip
    generator.warm_up()
    stream = generator.stream([{"role": "user", "content": "the"}])
    next(stream)  # the model thread is busy with this stream
    with pytest.raises(ModelBusyError):
        generator.generate(MESSAGES)
    stream.close()
    assert generator.generate(MESSAGES, max_new_tokens=2).completion_tokens <= 2


def _lora(base: Path, folder: Path, seed: int = 1) -> Path:
    """A LoRA adapter with random (non-zero) weights on the tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")  # fmt: skip
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def _prompt_tuning(base: Path, folder: Path) -> Path:
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    config = PromptTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def _with_adapters(
    base: Path, cache: Path, folders: dict[str, Path], tokens: int, *, fallback: bool = False
) -> tuple[HFGenerator, CT2Generator]:
    """The reference and CTranslate2 on `base`, serving the adapters in `folders` by name; with
    `fallback`, CTranslate2 hands what it cannot serve to the reference."""
    reference = HFGenerator(model=str(base), cache_dir=cache, max_new_tokens=tokens,
                            adapters=folders.__getitem__)  # fmt: skip
    fast = CT2Generator(model=str(base), cache_dir=cache, max_new_tokens=tokens,
                        adapters=folders.__getitem__,
                        fallback=(lambda: reference) if fallback else None)  # fmt: skip
    return reference, fast


def test_lora_adapter_is_merged_once_and_answers_as_transformers(
    tiny_llama: Path, tmp_path: Path
) -> None:
    folders = {"tuned": _lora(tiny_llama, tmp_path / "tuned")}
    reference, fast = _with_adapters(tiny_llama, tmp_path, folders, 16)
    same = 0
    for messages in prompts(10):
        tuned = reference.generate(messages, adapter="tuned")
        assert tuned != reference.generate(messages)  # the adapter changes answers
        same += fast.generate(messages, adapter="tuned") == tuned
        assert fast.generate(messages) == reference.generate(messages)  # base untouched
    assert same >= 9  # merged weights round differently from LoRA beside the base, rarely
    merged = list((tmp_path / "ctranslate2" / "adapters").glob("tuned-*"))
    assert len(merged) == 1
    # retrained under the same name: a new merge, from the new weights
    _lora(tiny_llama, tmp_path / "other", seed=2)
    for file in (tmp_path / "other").iterdir():
        file.replace(tmp_path / "tuned" / file.name)
    retrained = reference.generate(MESSAGES, adapter="tuned")
    assert fast.generate(MESSAGES, adapter="tuned") == retrained
    assert len(list((tmp_path / "ctranslate2" / "adapters").glob("tuned-*"))) == 2


def test_prompt_tuning_falls_back_to_transformers_and_says_so(
    tiny_llama: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folders = {"soft": _prompt_tuning(tiny_llama, tmp_path / "soft")}
    reference, fast = _with_adapters(tiny_llama, tmp_path, folders, 8, fallback=True)
    with caplog.at_level(logging.INFO, logger="generation.ctranslate"):
        expected = reference.generate(MESSAGES, adapter="soft")
        assert fast.generate(MESSAGES, adapter="soft") == expected
    assert "answering with transformers" in caplog.text
    alone = CT2Generator(model=str(tiny_llama), cache_dir=tmp_path, adapters=folders.__getitem__)
    with pytest.raises(AdapterUnavailableError, match="BACKEND=transformers"):
        alone.generate(MESSAGES, adapter="soft")


def test_onednn_is_chosen_unless_the_environment_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CT2_USE_MKL", raising=False)
    prefer_onednn()
    assert os.environ["CT2_USE_MKL"] == "0"
    monkeypatch.setenv("CT2_USE_MKL", "1")  # a user who measured MKL faster keeps it
    prefer_onednn()
    assert os.environ["CT2_USE_MKL"] == "1"
