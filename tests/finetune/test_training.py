"""Training on a tiny in-code Llama: every method lowers its loss; an adapter saved and reloaded
gives the same outputs; an interrupted run resumes to the same weights; a seed reproduces a
run; bad input stops at once with a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune.adapters import AdapterStore
from finetune.datasets import Dataset, DatasetStore
from finetune.records import Record
from finetune.training import TrainingError, TrainPlan, check_dataset, run_training

pytestmark = pytest.mark.model
QUESTIONS = [
    "what is ragqa", "what is debian", "what is the index", "what is a chunk",
    "what is the server", "what is a source", "how do i ingest", "how do i ask",
]  # fmt: skip


def records(kind: str, form: str) -> list[Record]:
    made = []
    for i, question in enumerate(QUESTIONS * 2):
        prompt = [{"role": "system", "content": "answer the question ."},
                  {"role": "user", "content": f"{question} ?"}]  # fmt: skip
        made.append(Record(
            kind=kind, format=form, origin="qa", question=f"{question} {i}", source=None,
            prompt=prompt, completion="it is the answer .", rejected="i could not find it .",
            split="validation" if i % 4 == 3 else "train",
        ))  # fmt: skip
    return made


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    made = records("sft", "closed_book") + records("sft", "rag") + records("preference", "rag")
    return DatasetStore(tmp_path / "datasets").write("d", made, {"base_model": "tiny"})


def load(tiny_llama: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(
        tiny_llama)  # fmt: skip


def train(tiny_llama: Path, dataset: Dataset, run_dir: Path, **options: Any) -> Any:
    model, tokenizer = load(tiny_llama)
    plan = TrainPlan(**{"method": "lora", "name": "a", "max_steps": 8, "batch_size": 4,
                        "learning_rate": 1e-2, "eval_every": 4, "seed": 0} | options)  # fmt: skip
    return run_training(plan, dataset, model=model, tokenizer=tokenizer, run_dir=run_dir,
                        base_model="tiny", progress=False)  # fmt: skip


def weights(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


@pytest.mark.parametrize("method", ["lora", "prompt_tuning", "raft", "dpo"])
def test_each_method_lowers_its_loss(
    tiny_llama: Path, dataset: Dataset, tmp_path: Path, method: str
) -> None:
    rate = {"prompt_tuning": 0.3, "dpo": 5e-3}.get(method, 1e-2)
    _, outcome = train(tiny_llama, dataset, tmp_path / "run", method=method,
                             learning_rate=rate, max_steps=10)  # fmt: skip
    losses = [h["loss"] for h in outcome.history if "loss" in h]
    assert outcome.steps == 10 and outcome.stopped_by == "completed"
    assert sum(losses[-3:]) / 3 < losses[0], losses
    assert outcome.eval_loss is not None  # validation ran


def test_a_saved_adapter_reloads_to_the_same_outputs(
    tiny_llama: Path, dataset: Dataset, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel

    trainer, _ = train(tiny_llama, dataset, tmp_path / "run", max_steps=4)
    saved = AdapterStore(tmp_path / "adapters").save("a", trainer.model, {"method": "lora"})
    ids = torch.tensor([[5, 17, 23, 42, 7, 9]])
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer.model(input_ids=ids).logits
        base, _ = load(tiny_llama)
        reloaded = PeftModel.from_pretrained(base, saved.path).eval()
        assert torch.allclose(reloaded(input_ids=ids).logits, expected, atol=1e-5)
        with reloaded.disable_adapter():  # the adapter is what changes the outputs
            assert not torch.allclose(reloaded(input_ids=ids).logits, expected, atol=1e-3)
    assert saved.info["method"] == "lora" and saved.info["name"] == "a"


class Interrupt:
    """Raises at a step, as a kill would (the checkpoint before it is on disk)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_weights(
    tiny_llama: Path, dataset: Dataset, tmp_path: Path
) -> None:
    whole, _ = train(tiny_llama, dataset, tmp_path / "whole", max_steps=6, eval_every=2)
    model, tokenizer = load(tiny_llama)
    plan = TrainPlan(method="lora", name="a", max_steps=6, batch_size=4, learning_rate=1e-2,
                     eval_every=2, seed=0)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run_training(plan, dataset, model=model, tokenizer=tokenizer, run_dir=tmp_path / "cut",
                     base_model="tiny", progress=False, extra_callbacks=[Interrupt(5)])  # fmt: skip
    model, tokenizer = load(tiny_llama)
    resumed, outcome = run_training(
        plan,
        dataset,
        model=model,
        tokenizer=tokenizer,
        run_dir=tmp_path / "cut",
        base_model="tiny",
        progress=False,
    )
    assert outcome.resumed_from == 4 and outcome.steps == 6
    a, b = weights(whole.model), weights(resumed.model)
    assert a.keys() == b.keys() and all((a[k] - b[k]).abs().max() < 1e-5 for k in a)


def test_the_same_seed_reproduces_a_run_and_another_does_not(
    tiny_llama: Path, dataset: Dataset, tmp_path: Path
) -> None:
    first, _ = train(tiny_llama, dataset, tmp_path / "1", max_steps=3)
    again, _ = train(tiny_llama, dataset, tmp_path / "2", max_steps=3)
    other, _ = train(tiny_llama, dataset, tmp_path / "3", max_steps=3, seed=1)
    a, b, c = weights(first.model), weights(again.model), weights(other.model)
    assert all((a[k] - b[k]).abs().max() < 1e-6 for k in a)
    assert any((a[k] - c[k]).abs().max() > 1e-4 for k in a)


def test_bad_input_stops_at_once_with_what_to_do(
    tiny_llama: Path, dataset: Dataset, tmp_path: Path
) -> None:
    with pytest.raises(TrainingError, match="built for the base model 'tiny'"):
        check_dataset(dataset, base_model="other", template_hash=None)
    only_sft = DatasetStore(tmp_path / "ds").write("s", records("sft", "closed_book"),
                                                   {"base_model": "tiny"})  # fmt: skip
    with pytest.raises(TrainingError, match=r"no preference records.*--feedback"):
        train(tiny_llama, only_sft, tmp_path / "r1", method="dpo")
    with pytest.raises(TrainingError, match="raise --budget-minutes"):
        train(tiny_llama, dataset, tmp_path / "r2", budget_s=1e-6)
    with pytest.raises(KeyboardInterrupt):
        model, tokenizer = load(tiny_llama)
        plan = TrainPlan(method="lora", name="a", max_steps=4, eval_every=2)
        run_training(plan, dataset, model=model, tokenizer=tokenizer, run_dir=tmp_path / "r3",
                     base_model="tiny", progress=False, extra_callbacks=[Interrupt(3)])  # fmt: skip
    with pytest.raises(TrainingError, match="--restart"):
        train(tiny_llama, dataset, tmp_path / "r3", max_steps=5)


def test_cli_trains_an_adapter_and_lists_shows_and_deletes_it(
    tiny_llama: Path, tmp_path: Path, make_settings: Any
) -> None:
    import json

    from click.testing import CliRunner

    from server.cli import main
    from server.wiring import Services
    from tests.fakes import FakeEmbedder

    settings = make_settings(home=tmp_path / "home", generator={"model": str(tiny_llama)})
    services = Services(settings, embedder=FakeEmbedder())
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": f"{q} ?", "answer": "it is the answer ."}) + "\n"
                          for q in QUESTIONS * 3))  # fmt: skip
    runner = CliRunner()

    def ragqa(*args: str) -> Any:
        return runner.invoke(main, list(args), obj=services)

    built = ragqa("dataset", "build", "d", "--qa", str(qa), "--validation-share", "0.3")
    assert built.exit_code == 0, built.output
    done = ragqa("finetune", "-m", "lora", "-d", "d", "-n", "a", "--max-steps", "2", "--json")
    assert done.exit_code == 0, done.output
    info = json.loads(done.stdout)
    assert info["dataset"] == "d@v1" and info["base_model"] == str(tiny_llama)
    assert info["metrics"]["steps"] == 2 and info["template"] == "docs"
    assert (tmp_path / "home" / "adapters" / "a" / "adapter_config.json").is_file()
    assert not (tmp_path / "home" / "adapters" / ".runs" / "a").exists()  # checkpoints gone
    assert "a  lora  d@v1" in ragqa("adapters", "list").output
    assert json.loads(ragqa("adapters", "show", "a").output)["method"] == "lora"
    again = ragqa("finetune", "-m", "lora", "-d", "d", "-n", "a", "--max-steps", "2")
    assert again.exit_code != 0 and "An adapter 'a' exists" in again.output
    wrong = ragqa("finetune", "-m", "dpo", "-d", "d", "-n", "b")
    assert wrong.exit_code != 0 and "no preference records" in wrong.output
    assert ragqa("adapters", "delete", "a").exit_code == 0
    assert "No adapters yet" in ragqa("adapters", "list").output
