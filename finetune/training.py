"""`ragqa finetune`: LoRA, prompt tuning, RAFT and DPO on a dataset version, with the trainers
of `trl` and adapters of `peft`, on the CPU: a progress bar with loss and ETA, a time budget,
validation loss with early stopping, checkpoints a second run of the same command resumes
from, and a seed that makes a run reproducible. Runs in its own process, never the server's."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from finetune.datasets import Dataset
from generation.adapters import peft_quietly

METHODS = ("lora", "prompt_tuning", "raft", "dpo")
# What each method trains on: (record kind, record format or None for any).
RECORDS = {"lora": ("sft", "closed_book"), "prompt_tuning": ("sft", "closed_book"),
           "raft": ("sft", "rag"), "dpo": ("preference", None)}  # fmt: skip
LEARNING_RATES = {"lora": 2e-4, "prompt_tuning": 3e-3, "raft": 2e-4, "dpo": 5e-5}


class TrainingError(ValueError):
    """A run that cannot start as asked; the message says what to do."""


@dataclass(frozen=True)
class TrainPlan:
    """One fine-tuning run."""

    method: str
    name: str
    budget_s: float = 1800.0
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float | None = None
    batch_size: int = 4
    rank: int = 8  # LoRA
    virtual_tokens: int = 16  # prompt tuning
    beta: float = 0.1  # DPO
    eval_every: int = 25
    eval_records: int = 32  # validation records scored each time (a pass costs ~1 s each here)
    patience: int = 3
    max_length: int = 2048
    seed: int = 0

    def key(self, dataset: Dataset, base_model: str) -> str:
        """What a checkpoint must match to be resumed: the plan (but its budget) and data."""
        options = asdict(self) | {"budget_s": None, "data": dataset.manifest["content_hash"],
                                  "base_model": base_model}  # fmt: skip
        return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()


@dataclass
class Outcome:
    """What a run did."""

    steps: int
    stopped_by: str  # completed, budget or early_stopping
    train_loss: float | None
    eval_loss: float | None
    seconds: float
    resumed_from: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)


def training_records(
    dataset: Dataset, method: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation) records the method trains on, in the trainer's columns."""
    if method not in METHODS:
        raise TrainingError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    kind, form = RECORDS[method]
    columns = ("prompt", "chosen", "rejected") if kind == "preference" else ("prompt", "completion")
    train, validation = (
        [{c: r[c] for c in columns} for r in dataset.records(split, kind=kind, form=form)]
        for split in ("train", "validation")
    )
    if not train:
        what = f"{kind} records" + (f" of the {form} format" if form else "")
        how = {"closed_book": "--qa FILE", "rag": "--qa FILE --collection NAME",
               None: "--feedback (after users rated answers up and down)"}[form]  # fmt: skip
        raise TrainingError(
            f"{dataset.ref} has no {what} in its train split, which --method {method} needs: "
            f"build one with `ragqa dataset build NAME {how}`."
        )
    return train, validation


def check_dataset(dataset: Dataset, *, base_model: str, template_hash: str | None) -> None:
    """Refuse a dataset rendered for another model or with a template that has changed since."""
    built_for = dataset.manifest.get("base_model")
    if built_for != base_model:
        raise TrainingError(
            f"{dataset.ref} was built for the base model {built_for!r}, not {base_model!r}: its "
            "prompts were fitted to that model. Rebuild it (`ragqa dataset build`) with "
            f"RAGQA_GENERATOR__MODEL={base_model}, or train with the model it was built for."
        )
    if template_hash is not None and dataset.manifest.get("template_hash") != template_hash:
        raise TrainingError(
            f"The template {dataset.manifest.get('template')!r} changed since {dataset.ref} was "
            "built, so its records no longer match the prompts answers use: rebuild the dataset."
        )


def _trainer(plan: TrainPlan, model: Any, tokenizer: Any, train: Sequence[dict[str, Any]],
             validation: Sequence[dict[str, Any]], run_dir: Path, steps: int) -> Any:  # fmt: skip
    """The trl trainer for the plan, with its peft adapter."""
    from datasets import Dataset as Table
    from peft import LoraConfig, PromptTuningConfig, TaskType
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    evaluate = bool(validation)
    every = max(1, min(plan.eval_every, steps))
    common: dict[str, Any] = dict(
        output_dir=str(run_dir), max_steps=steps, per_device_train_batch_size=plan.batch_size,
        per_device_eval_batch_size=plan.batch_size,
        learning_rate=plan.learning_rate or LEARNING_RATES[plan.method],
        lr_scheduler_type="linear", warmup_steps=min(10, steps // 10), logging_steps=1,
        save_strategy="steps", save_steps=every, save_total_limit=2,
        eval_strategy="steps" if evaluate else "no", eval_steps=every,
        load_best_model_at_end=evaluate, metric_for_best_model="eval_loss",
        greater_is_better=False, report_to=[], use_cpu=True, seed=plan.seed, data_seed=plan.seed,
        disable_tqdm=True, max_length=plan.max_length, activation_checkpointing=False,
        dataloader_num_workers=0, save_only_model=False,
        bf16=False, fp16=False,  # float32: the CPU has no fast half precision
    )  # fmt: skip
    if plan.method == "prompt_tuning":
        adapter: Any = PromptTuningConfig(task_type=TaskType.CAUSAL_LM,
                                          num_virtual_tokens=plan.virtual_tokens)  # fmt: skip
    else:
        adapter = LoraConfig(task_type=TaskType.CAUSAL_LM, r=plan.rank, lora_alpha=2 * plan.rank,
                             lora_dropout=0.0, target_modules="all-linear")  # fmt: skip
    callbacks: list[Any] = []
    if evaluate:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=plan.patience))
    tables = {"train_dataset": Table.from_list(list(train)),
              "eval_dataset": Table.from_list(list(validation)) if evaluate else None}  # fmt: skip
    if plan.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=model, args=DPOConfig(beta=plan.beta, **common),
                             processing_class=tokenizer, peft_config=adapter, callbacks=callbacks,
                             **tables)  # fmt: skip
    else:
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(model=model, args=SFTConfig(completion_only_loss=True, **common),
                             processing_class=tokenizer, peft_config=adapter, callbacks=callbacks,
                             **tables)  # fmt: skip
    for quiet in (PrinterCallback, ProgressCallback):  # our own progress bar instead
        trainer.remove_callback(quiet)
    return trainer


def run_training(
    plan: TrainPlan, dataset: Dataset, *, model: Any, tokenizer: Any, run_dir: Path,
    base_model: str, progress: bool = True, restart: bool = False,
    extra_callbacks: Sequence[Any] = (), report: Callable[[str], None] | None = None,
) -> tuple[Any, Outcome]:  # fmt: skip
    """Train; return (the trainer, with the best model loaded, and what happened). Checkpoints
    in `run_dir` from an interrupted run of the same plan and data are resumed from."""
    from transformers import set_seed

    from finetune.callbacks import BudgetStop, Progress

    train, validation = training_records(dataset, plan.method)
    validation = validation[: plan.eval_records]
    key = plan.key(dataset, base_model)
    marker = run_dir / "run.json"
    if run_dir.exists() and (restart or not marker.exists()):
        shutil.rmtree(run_dir)
    elif marker.exists() and json.loads(marker.read_text())["key"] != key:
        raise TrainingError(
            f"An interrupted run of {plan.name!r} with other options or data is in {run_dir}: "
            "run the same command as before to resume it, or pass --restart to discard it."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"key": key, "plan": asdict(plan), "data": dataset.ref}))
    per_epoch = math.ceil(len(train) / plan.batch_size)
    steps = plan.max_steps or max(1, math.ceil(per_epoch * plan.epochs))
    set_seed(plan.seed)
    began = time.monotonic()
    with peft_quietly():
        trainer = _trainer(plan, model, tokenizer, train, validation, run_dir, steps)
    _check_budget(trainer, plan, began)
    checkpoints = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    resume = checkpoints[-1] if checkpoints else None
    budget = BudgetStop(deadline=began + plan.budget_s)
    trainer.add_callback(budget)
    trainer.add_callback(Progress(total=steps, deadline=began + plan.budget_s, bar=progress,
                                  report=report))  # fmt: skip
    for callback in extra_callbacks:
        trainer.add_callback(callback)
    with peft_quietly():
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    history = [h for h in trainer.state.log_history if "loss" in h or "eval_loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    stopped = "budget" if budget.fired else (
        "early_stopping" if trainer.state.global_step < steps else "completed"
    )  # fmt: skip
    return trainer, Outcome(
        steps=trainer.state.global_step, stopped_by=stopped,
        train_loss=getattr(result, "training_loss", None), eval_loss=min(evals, default=None),
        seconds=time.monotonic() - began,
        resumed_from=int(resume.name.split("-")[1]) if resume else None,
        history=[{k: float(v) for k, v in h.items() if isinstance(v, int | float)}
                 for h in history],
    )  # fmt: skip


def _check_budget(trainer: Any, plan: TrainPlan, began: float) -> None:
    """Stop at once when the budget left cannot hold one step (about three forward passes)."""
    import torch

    batch = next(iter(trainer.get_train_dataloader()))
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}
    if "input_ids" not in inputs:  # DPO batches name their sequences otherwise
        inputs = {"input_ids": next(v for k, v in batch.items() if k.endswith("input_ids"))}
    start = time.monotonic()
    with torch.no_grad():
        trainer.model(**inputs)
    step = 3 * (time.monotonic() - start) * (2 if plan.method == "dpo" else 1)
    left = plan.budget_s - (time.monotonic() - began)
    if left < step:
        raise TrainingError(
            f"The budget leaves {max(left, 0):.1f} s, less than one training step takes here "
            f"(about {step:.1f} s): raise --budget-minutes."
        )
