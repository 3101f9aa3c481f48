"""ModelThread: one thread for all model work, a bounded and timed wait, no nested deadlock."""

from __future__ import annotations

import threading
import time

import pytest

from retrieval.model_thread import Emit, ModelBusyError, ModelThread
from tests.fakes import occupy


@pytest.fixture
def model_thread() -> ModelThread:
    return ModelThread(max_waiting=1, wait_timeout_s=5, name="test-model")


def test_every_call_runs_on_the_one_thread(model_thread: ModelThread) -> None:
    names: set[str] = set()
    callers = [
        threading.Thread(
            target=lambda: model_thread.run(lambda: names.add(threading.current_thread().name))
        )
        for _ in range(4)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(names) == 1 and next(iter(names)).startswith("test-model")


def test_a_nested_call_runs_inline_instead_of_deadlocking(model_thread: ModelThread) -> None:
    inner = model_thread.run(lambda: model_thread.run(threading.get_ident))
    assert inner == model_thread.run(threading.get_ident)
    streamed = model_thread.run(lambda: list(model_thread.stream(lambda emit, _: emit(7))))
    assert streamed == [7]


def test_callers_beyond_the_waiting_limit_are_busy_at_once(model_thread: ModelThread) -> None:
    release, first = occupy(model_thread)
    waiting = threading.Thread(target=lambda: model_thread.run(lambda: None))
    waiting.start()
    time.sleep(0.2)  # the one allowed waiter is queued
    started = time.monotonic()
    with pytest.raises(ModelBusyError, match="1 requests are already waiting"):
        model_thread.run(lambda: None)
    assert time.monotonic() - started < 1
    # Batch work is never turned away: it waits its turn.
    batch = threading.Thread(target=lambda: model_thread.run(lambda: None, bounded=False))
    batch.start()
    release.set()
    for thread in (first, waiting, batch):
        thread.join(5)
        assert not thread.is_alive()
    assert model_thread.run(lambda: 42) == 42  # seats were all given back


def test_a_caller_that_waits_too_long_is_busy_and_its_work_never_runs() -> None:
    model_thread = ModelThread(max_waiting=4, wait_timeout_s=0.3)
    release, first = occupy(model_thread)
    ran: list[int] = []
    with pytest.raises(ModelBusyError, match=r"stayed busy for 0\.3 s"):
        model_thread.run(lambda: ran.append(1))
    release.set()
    first.join(5)
    assert model_thread.run(lambda: ran.append(2)) is None
    assert ran == [2]


def test_exceptions_reach_the_caller(model_thread: ModelThread) -> None:
    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        model_thread.run(fail)

    def fail_midway(emit: Emit[int], _: threading.Event) -> None:
        emit(1)
        raise ValueError("midway")

    stream = model_thread.stream(fail_midway)
    assert next(stream) == 1
    with pytest.raises(ValueError, match="midway"):
        next(stream)
    assert model_thread.run(lambda: "free") == "free"


def test_closing_a_stream_cancels_the_producer_and_frees_the_thread(
    model_thread: ModelThread,
) -> None:
    produced: list[int] = []

    def count(emit: Emit[int], cancelled: threading.Event) -> None:
        for i in range(10_000):
            if cancelled.is_set():
                return
            produced.append(i)
            emit(i)
            time.sleep(0.001)

    stream = model_thread.stream(count)
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()  # waits for the producer to stop
    assert len(produced) < 10_000
    assert model_thread.run(lambda: "free") == "free"
