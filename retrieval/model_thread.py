"""The one thread that runs all model work, and the bounded queue in front of it.

torch's CPU kernels run on an OpenMP team owned by the calling thread. Every thread that runs
them keeps its own team, and once there are more team threads than cores, OpenMP stops
spin-waiting between kernels: decoding on 2 cores ran 1.7x slower from a second thread. So all
model work (loading, embedding, reranking, generation, and remote generation, so that every
backend queues alike) runs on one thread, one call at a time.

Admission: at most `max_waiting` callers wait behind the running one, each at most
`wait_timeout_s` for its turn; beyond that ModelBusyError (HTTP 503 busy) at once, instead of
requests piling up. A call made on the model thread itself runs inline, so nesting cannot
deadlock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Emit = Callable[[T], None]
_DONE = object()


class ModelBusyError(RuntimeError):
    """Too many requests are already waiting for the model, or one waited too long."""


@dataclass(frozen=True)
class _Failure:
    error: BaseException


class ModelThread:
    """A single-thread executor with a bounded, timed wait. Thread-safe."""

    def __init__(
        self, *, max_waiting: int = 16, wait_timeout_s: float = 300.0, name: str = "ragqa-model"
    ) -> None:
        if max_waiting < 0 or wait_timeout_s <= 0:
            raise ValueError("max_waiting must be >= 0 and wait_timeout_s > 0")
        self.max_waiting = max_waiting
        self.wait_timeout_s = wait_timeout_s
        self._ident: int | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=name, initializer=self._remember_thread
        )
        # The running call holds a seat too: max_waiting + 1 in all.
        self._seats = threading.BoundedSemaphore(max_waiting + 1)

    def _remember_thread(self) -> None:
        self._ident = threading.get_ident()

    @property
    def occupied(self) -> int:
        """Requests running on or waiting for the model now (for the queue-depth metric)."""
        return self.max_waiting + 1 - self._seats._value  # CPython semaphores keep their count

    def on_thread(self) -> bool:
        """Whether the caller is the model thread."""
        return threading.get_ident() == self._ident

    def _take_seat(self) -> None:
        if not self._seats.acquire(blocking=False):
            raise ModelBusyError(
                f"The model is busy: {self.max_waiting} requests are already waiting. Retry "
                "in a moment, or add servers (or a remote generator) for more throughput."
            )

    def _started_in_time(self, future: Future[Any], started: threading.Event) -> None:
        """Raise ModelBusyError if the task did not start within the wait (it is cancelled)."""
        if not started.wait(self.wait_timeout_s) and future.cancel():
            raise ModelBusyError(
                f"The model stayed busy for {self.wait_timeout_s:g} s; retry later."
            )

    def run(self, fn: Callable[[], T], *, bounded: bool = True) -> T:
        """fn() on the model thread, and its result (or its exception).

        `bounded`: subject to the waiting limit and timeout (requests). Batch work that
        must not fail for load, such as an ingest's embedding, passes False and waits its turn.
        """
        if self.on_thread():
            return fn()
        if not bounded:
            return self._executor.submit(fn).result()
        self._take_seat()
        try:
            started = threading.Event()

            def task() -> T:
                started.set()
                return fn()

            future = self._executor.submit(task)
            self._started_in_time(future, started)
            return future.result()
        finally:
            self._seats.release()

    def stream(self, produce: Callable[[Emit[T], threading.Event], None]) -> Iterator[T]:
        """What `produce(emit, cancelled)` emits on the model thread, as it comes.

        Closing the iterator sets `cancelled` (produce should stop soon after) and waits for
        produce to return, so the model is free again. An exception in produce is raised here.
        """
        if self.on_thread():
            items: list[T] = []
            produce(items.append, threading.Event())
            yield from items
            return
        self._take_seat()
        pieces: queue.Queue[object] = queue.Queue()
        cancelled, started = threading.Event(), threading.Event()

        def task() -> None:
            started.set()
            try:
                if not cancelled.is_set():  # the caller may have gone while this waited
                    produce(pieces.put, cancelled)
            except BaseException as error:  # raised again in the caller's thread
                pieces.put(_Failure(error))
            finally:
                self._seats.release()
                pieces.put(_DONE)

        future = self._executor.submit(task)
        try:
            self._started_in_time(future, started)
        except ModelBusyError:
            self._seats.release()  # the task never ran
            raise
        try:
            while (item := pieces.get()) is not _DONE:
                if isinstance(item, _Failure):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            cancelled.set()
            if future.cancel():  # never started: give its seat back here
                self._seats.release()
            else:
                future.result()

    def shutdown(self) -> None:
        """Finish the running call and stop the thread."""
        self._executor.shutdown(wait=True, cancel_futures=True)


_default: ModelThread | None = None
_default_lock = threading.Lock()


def default_model_thread() -> ModelThread:
    """The process's model thread for components built without one (tests, scripts); the
    server builds its own from the settings and passes it to every model component."""
    global _default  # noqa: PLW0603 - one per process, created on first use
    with _default_lock:
        if _default is None:
            _default = ModelThread()
        return _default
