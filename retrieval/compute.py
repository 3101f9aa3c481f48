"""Where model work runs: on one thread for the whole process, when one is given.

torch's CPU kernels run on an OpenMP team owned by the calling thread. Every thread that runs
them keeps its own team, and once there are more team threads than cores, OpenMP stops
spin-waiting between kernels: decoding on 2 cores ran 1.7x slower from a second thread. So
the server runs all model work (embedding, reranking, generation) on one executor thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")
_inside = threading.local()


def run_on(executor: Executor | None, fn: Callable[[], T]) -> T:
    """fn() on the executor's thread and its result; here, if there is no executor or this is
    already that thread (so nested calls cannot deadlock)."""
    if executor is None or getattr(_inside, "active", False):
        return fn()

    def task() -> T:
        _inside.active = True
        try:
            return fn()
        finally:
            _inside.active = False

    return executor.submit(task).result()
