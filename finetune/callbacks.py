"""Trainer callbacks: stop (with a checkpoint) when the time budget is spent, and one progress
bar with the loss, the validation loss and an ETA that counts the budget."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from tqdm import tqdm
from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class BudgetStop(TrainerCallback):  # type: ignore[misc]
    """Ends training at the first step after `deadline` (time.monotonic), saving a checkpoint
    so the same command can carry on later."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if time.monotonic() >= self.deadline:
            self.fired = True
            control.should_training_stop = True
            control.should_save = True
        return control


class Progress(TrainerCallback):  # type: ignore[misc]
    """A tqdm bar over the steps: loss, validation loss, and the ETA (or the budget's end,
    whichever comes first). Without a terminal (`bar` False), a line to `report` (the log, or
    the command's output) at each validation and at most every `every_s` seconds."""

    def __init__(self, total: int, deadline: float, *, bar: bool = True, every_s: float = 30.0,
                 report: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.total, self.deadline, self.use_bar, self.every_s = total, deadline, bar, every_s
        self.report = report or logger.info
        self.bar: Any = None
        self.shown: dict[str, str] = {}
        self.began = self.last_line = time.monotonic()
        self.first_step = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.began, self.first_step = time.monotonic(), state.global_step
        if self.use_bar:
            self.bar = tqdm(total=self.total, initial=state.global_step, desc="training",
                            unit="step", file=sys.stderr)  # fmt: skip

    def _line(self, step: int) -> None:
        done = step - self.first_step
        spent = time.monotonic() - self.began
        eta = spent / done * (self.total - step) if done else float("nan")
        left = max(0.0, self.deadline - time.monotonic())
        shown = " ".join(f"{k} {v}" for k, v in self.shown.items())
        self.report(f"step {step}/{self.total} {shown} eta {min(eta, left) / 60:.1f} min "
                    f"(budget left {left / 60:.1f} min)")  # fmt: skip
        self.last_line = time.monotonic()

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.shown["loss"] = f"{logs['loss']:.3f}"
        if "eval_loss" in logs:
            self.shown["val"] = f"{logs['eval_loss']:.3f}"
        if self.bar is not None:
            left = max(0.0, self.deadline - time.monotonic())
            self.bar.set_postfix(self.shown | {"budget left": f"{left / 60:.1f} min"})
        elif "eval_loss" in logs:
            self._line(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
        elif time.monotonic() - self.last_line >= self.every_s:
            self._line(state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
