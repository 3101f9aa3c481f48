"""Adapters served on the one base model: by name, switched per request on the model thread,
never mixed between concurrent requests; the finetuned modes over HTTP."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from finetune.adapters import AdapterNotFoundError, AdapterStore
from finetune.datasets import DatasetStore
from finetune.training import TrainPlan, run_training
from generation.adapters import virtual_tokens
from generation.generator import PromptTooLongError
from generation.rag import Request
from server.app import create_app
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder
from tests.finetune.test_training import load, records

pytestmark = pytest.mark.model
ASKED = [{"role": "user", "content": "what is the index ?"}]


@pytest.fixture
def home(tiny_llama: Path, tmp_path: Path) -> Path:
    """A home with a LoRA and a prompt-tuning adapter trained on the tiny model."""
    home = tmp_path / "home"
    made = records("sft", "closed_book")
    dataset = DatasetStore(tmp_path / "ds").write("d", made, {"base_model": str(tiny_llama)})
    store = AdapterStore(home / "adapters")
    for name, method, rate in (("lora-a", "lora", 5e-2), ("pt-a", "prompt_tuning", 0.5)):
        model, tokenizer = load(tiny_llama)
        plan = TrainPlan(method=method, name=name, max_steps=6, learning_rate=rate, seed=0)
        trainer, _ = run_training(plan, dataset, model=model, tokenizer=tokenizer,
                                  run_dir=tmp_path / name, base_model=str(tiny_llama),
                                  progress=False)  # fmt: skip
        store.save(name, trainer.model, {"method": method, "base_model": str(tiny_llama)})
    return home


@pytest.fixture
def services(home: Path, tiny_llama: Path, make_settings: MakeSettings) -> Services:
    settings = make_settings(home=home, generator={"model": str(tiny_llama), "max_new_tokens": 8},
                             answers={"mode": "rag"}, retrieval={"min_score": -1.0})  # fmt: skip
    return Services(settings, embedder=FakeEmbedder())


def ingest_docs(services: Services, tmp_path: Path) -> None:
    """One small document in the collection 'docs'."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("ragqa is a server . it can answer a question from a document .")
    services.ingestor.ingest([docs], collection="docs")


def test_adapters_change_the_answer_and_the_base_model_comes_back(services: Services) -> None:
    generator = services.generator
    base = generator.generate(ASKED).text
    lora = generator.generate(ASKED, adapter="lora-a").text
    prompt = generator.generate(ASKED, adapter="pt-a").text
    assert base not in (lora, prompt)
    assert generator.generate(ASKED).text == base  # no adapter left active
    assert generator.generate(ASKED, adapter="lora-a").text == lora


def test_an_adapter_trained_again_under_its_name_is_reloaded_and_a_deleted_one_refused(
    services: Services,
) -> None:
    generator, store = services.generator, services.adapters
    lora, prompt = (generator.generate(ASKED, adapter=n).text for n in ("lora-a", "pt-a"))
    assert lora != prompt
    # another process (ragqa finetune --replace) writes new weights under the same name
    shutil.rmtree(store.get("lora-a").path)
    shutil.copytree(store.get("pt-a").path, store.root / "lora-a")
    assert generator.generate(ASKED, adapter="lora-a").text == prompt
    store.delete("lora-a")
    with pytest.raises(AdapterNotFoundError):
        generator.generate(ASKED, adapter="lora-a")
    assert generator.generate(ASKED, adapter="pt-a").text == prompt


def test_concurrent_requests_never_use_each_others_adapter(services: Services) -> None:
    generator = services.generator
    expected = {a: generator.generate(ASKED, adapter=a).text for a in (None, "lora-a", "pt-a")}
    assert len(set(expected.values())) == 3
    found: list[tuple[str | None, str]] = []
    errors: list[BaseException] = []

    def ask(adapter: str | None) -> None:
        try:
            for _ in range(4):
                found.append((adapter, generator.generate(ASKED, adapter=adapter).text))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(a,)) for a in (None, "lora-a", "pt-a") * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(found) == 24
    assert all(text == expected[adapter] for adapter, text in found)


def test_the_finetuned_modes_over_http(services: Services, tmp_path: Path) -> None:
    ingest_docs(services, tmp_path)
    client = create_app(services.settings, services).test_client()

    def chat(**body: Any) -> Any:
        return client.post("/api/chat", json={"question": "what is ragqa ?", "strict": False,
                                              **body})  # fmt: skip

    done = chat(mode="finetuned", adapter="lora-a")
    assert done.status_code == 200, done.get_json()
    answer = done.get_json()
    assert answer["mode"] == "finetuned" and answer["adapter"] == "lora-a"
    assert services.feedback.get(answer["answer_id"]).adapter == "lora-a"
    with_sources = chat(mode="finetuned_rag", adapter="pt-a").get_json()
    assert with_sources["adapter"] == "pt-a" and with_sources["citations"]
    for body, status, code in (
        ({"mode": "finetuned"}, 400, "invalid_question"),  # no adapter named, none promoted
        ({"mode": "finetuned", "adapter": "nope"}, 404, "adapter_not_found"),
        ({"mode": "rag", "adapter": "lora-a"}, 400, "invalid_question"),
    ):
        response = chat(**body)
        assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)


def test_an_adapter_trained_on_another_base_model_is_refused(
    services: Services, home: Path
) -> None:
    store = AdapterStore(home / "adapters")
    info = store.get("lora-a").info | {"base_model": "another-model"}
    (store.get("lora-a").path / "ragqa.json").write_text(json.dumps(info))
    client = create_app(services.settings, services).test_client()
    body = {"question": "what is ragqa ?", "mode": "finetuned", "adapter": "lora-a"}
    response = client.post("/api/chat", json=body)
    assert response.status_code == 400
    assert "trained on 'another-model'" in response.get_json()["error"]["message"]


def test_promote_makes_a_non_regressing_adapter_the_default_and_refuses_a_regressing_one(
    services: Services, tmp_path: Path, home: Path
) -> None:
    from click.testing import CliRunner

    from server.cli import main

    store = AdapterStore(home / "adapters")
    for name in ("lora-a", "pt-a"):  # their dataset, for the record
        store.update_info(name, dataset=str(tmp_path / "ds" / "d" / "v1"))
    base = services.generator.generate(
        services.rag.prompt("what is the index ?", None, collection="docs",
                            mode="closed_book").messages).text  # fmt: skip
    # Gold = what the base model says: it is right, and the adapter, saying otherwise, regresses.
    frozen = tmp_path / "frozen.jsonl"
    frozen.write_text(json.dumps({"question": "what is the index ?", "answer": base}) + "\n")
    runner = CliRunner()

    def ragqa(*args: str) -> Any:
        return runner.invoke(main, list(args), obj=services)

    refused = ragqa("adapters", "promote", "lora-a", "-q", str(frozen))
    assert refused.exit_code != 0 and "not promoted" in refused.output, refused.output
    assert store.default() is None
    assert store.get("lora-a").info["promotion"]["passed"] is False
    lenient = ragqa("adapters", "promote", "lora-a", "-q", str(frozen), "--f1-margin", "1",
                    "--refusal-margin", "1", "--known-margin", "1", "--json")  # fmt: skip
    assert lenient.exit_code == 0, lenient.output
    assert store.default() == "lora-a" and "(default)" in ragqa("adapters", "list").output
    answer = services.rag.answer(Request("what is the index ?", "docs", mode="finetuned"))
    assert answer.adapter == "lora-a"  # the default, with none named
    assert "no longer the default" in ragqa("adapters", "demote").output
    assert store.default() is None


def test_v1_model_names_choose_an_adapter(services: Services, tmp_path: Path) -> None:
    ingest_docs(services, tmp_path)
    client = create_app(services.settings, services).test_client()
    ids = [m["id"] for m in client.get("/v1/models").get_json()["data"]]
    assert {"ragqa@lora-a", "generator@pt-a", "ragqa:docs"} <= set(ids)
    ask = [{"role": "user", "content": "what is the index ?"}]
    bare = client.post("/v1/chat/completions", json={"model": "generator@lora-a",
                                                      "messages": ask}).get_json()  # fmt: skip
    assert bare["model"] == "generator@lora-a"
    assert bare["choices"][0]["message"]["content"] == services.generator.generate(
        ASKED, adapter="lora-a").text  # fmt: skip
    rag = client.post("/v1/chat/completions", json={"model": "ragqa@pt-a:docs",
                                                     "messages": ask}).get_json()  # fmt: skip
    assert rag["ragqa"]["adapter"] == "pt-a" and rag["ragqa"]["mode"] == "finetuned_rag"
    missing = client.post("/v1/chat/completions", json={"model": "ragqa@nope", "messages": ask})
    assert missing.status_code == 404


def test_a_prompt_tuning_adapters_soft_prompt_is_counted_in_the_window(
    home: Path, tiny_llama: Path, make_settings: MakeSettings
) -> None:
    probe = Services(make_settings(home=home, generator={"model": str(tiny_llama),
                                                         "max_new_tokens": 8}),
                     embedder=FakeEmbedder())  # fmt: skip
    store = probe.adapters
    assert virtual_tokens(store.get("pt-a").path) == 16
    assert virtual_tokens(store.get("lora-a").path) == 0
    # a question that leaves the answer's 8 tokens and 1 to 15 more of a 256-token window
    count, words = probe.generator.count_tokens, 1
    while count([{"role": "user", "content": "what is the index ? " * words}]) < 256 - 8 - 15:
        words += 1
    asked = [{"role": "user", "content": "what is the index ? " * words}]
    assert 256 - 8 - 16 < count(asked) <= 256 - 8
    settings = make_settings(home=home, generator={"model": str(tiny_llama), "max_new_tokens": 8,
                                                   "context_window": 256})  # fmt: skip
    generator = Services(settings, embedder=FakeEmbedder()).generator
    generator.generate(asked)
    generator.generate(asked, adapter="lora-a")
    with pytest.raises(PromptTooLongError, match="window"):
        generator.generate(asked, adapter="pt-a")
