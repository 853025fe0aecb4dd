"""The adaptive batcher: every request gets exactly its own rows back, batches stay bounded."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.errors import OverloadedError
from modelport.serving import batcher as batcher_module
from modelport.serving.batcher import Batcher, BatcherClosedError


def _make(max_batch_size: int, max_latency_ms: float = 2.0, max_queue_rows: int = 10_000,
          fail_on: int | None = None, delay: float = 0.0):
    seen: list[int] = []
    executor = ThreadPoolExecutor(1)

    def run(payloads: list[np.ndarray]) -> list[np.ndarray]:
        import time

        merged = np.concatenate(payloads)
        seen.append(len(merged))
        if fail_on is not None and fail_on in merged:
            raise ValueError("poisoned row")
        if delay:
            time.sleep(delay)
        out = merged * 2  # the "model": one output per row
        bounds = np.cumsum([len(p) for p in payloads])[:-1]
        return np.split(out, bounds)

    batcher = Batcher(run, executor=executor, slice_rows=lambda p, a, b: p[a:b],
                      join=np.concatenate, max_batch_size=max_batch_size,
                      max_latency_ms=max_latency_ms, max_queue_rows=max_queue_rows)
    return batcher, seen, executor


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 150), min_size=1, max_size=25),
    delays=st.lists(st.sampled_from([0, 0, 0, 0.0005, 0.002]), min_size=25, max_size=25),
    max_batch_size=st.integers(1, 64),
)
def test_every_request_gets_its_own_rows_in_order(sizes, delays, max_batch_size) -> None:
    async def scenario() -> None:
        batcher, seen, executor = _make(max_batch_size)
        offsets = np.cumsum([0, *sizes])

        async def client(i: int) -> None:
            await asyncio.sleep(delays[i])
            rows = np.arange(offsets[i], offsets[i + 1])
            result = await batcher.submit(rows, len(rows))
            np.testing.assert_array_equal(result.value, rows * 2)
            assert result.batch_rows <= max_batch_size

        await asyncio.gather(*(client(i) for i in range(len(sizes))))
        await batcher.close()
        executor.shutdown()
        assert max(seen) <= max_batch_size
        assert sum(seen) == sum(sizes)

    asyncio.run(scenario())


def test_concurrent_requests_are_merged() -> None:
    async def scenario() -> list[int]:
        batcher, seen, executor = _make(64, max_latency_ms=50, delay=0.01)
        await asyncio.gather(*(batcher.submit(np.array([i]), 1) for i in range(40)))
        await batcher.close()
        executor.shutdown()
        return seen

    seen = asyncio.run(scenario())
    assert len(seen) < 40  # merged into far fewer calls than requests
    assert sum(seen) == 40


def test_a_lone_client_does_not_wait_for_the_deadline() -> None:
    async def scenario() -> float:
        import time

        batcher, _, executor = _make(64, max_latency_ms=500)
        start = time.monotonic()
        for i in range(5):
            await batcher.submit(np.array([i]), 1)
        await batcher.close()
        executor.shutdown()
        return time.monotonic() - start

    # five sequential requests with a 500 ms deadline: none of them waits for it
    assert asyncio.run(scenario()) < 0.5


def test_full_queue_answers_overloaded() -> None:
    async def scenario() -> None:
        batcher, _, executor = _make(4, max_queue_rows=8, delay=0.05)
        tasks = [asyncio.create_task(batcher.submit(np.arange(4), 4)) for _ in range(2)]
        await asyncio.sleep(0.01)  # the first runs (50 ms), the second waits: 4 rows queued
        tasks.append(asyncio.create_task(batcher.submit(np.arange(4), 4)))
        await asyncio.sleep(0)  # 8 rows queued now: the limit
        with pytest.raises(OverloadedError) as err:
            await batcher.submit(np.arange(4), 4)
        assert err.value.http_status == 503
        assert err.value.retry_after > 0
        await asyncio.gather(*tasks)
        await batcher.close()
        executor.shutdown()

    asyncio.run(scenario())


def test_one_bad_request_does_not_fail_its_neighbours() -> None:
    async def scenario() -> None:
        batcher, _, executor = _make(64, max_latency_ms=50, fail_on=13, delay=0.005)
        results = await asyncio.gather(
            *(batcher.submit(np.array([i]), 1) for i in range(20)), return_exceptions=True
        )
        await batcher.close()
        executor.shutdown()
        for i, res in enumerate(results):
            if i == 13:
                assert isinstance(res, ValueError)
            else:
                assert res.value.tolist() == [i * 2]

    asyncio.run(scenario())


def test_close_drains_queued_requests_and_refuses_new_ones() -> None:
    async def scenario() -> None:
        batcher, _, executor = _make(2, delay=0.01)
        tasks = [asyncio.create_task(batcher.submit(np.array([i]), 1)) for i in range(10)]
        await asyncio.sleep(0)
        closing = asyncio.create_task(batcher.close())
        await asyncio.sleep(0)
        with pytest.raises(BatcherClosedError):
            await batcher.submit(np.array([99]), 1)
        done = await asyncio.gather(*tasks)
        await closing
        executor.shutdown()
        assert [r.value.tolist() for r in done] == [[i * 2] for i in range(10)]

    asyncio.run(scenario())


@pytest.mark.parametrize(("delay", "inline_expected"), [(0.0, True), (0.003, False)])
def test_cheap_models_run_inline_and_slow_ones_on_the_executor(delay: float,
                                                              inline_expected: bool) -> None:
    import threading
    import time

    threads: list[str] = []

    def run(payloads: list[np.ndarray]) -> list[np.ndarray]:
        threads.append(threading.current_thread().name)
        if delay:
            time.sleep(delay)
        return [p * 2 for p in payloads]

    async def scenario() -> None:
        executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        batcher = Batcher(run, executor=executor, slice_rows=lambda p, a, b: p[a:b],
                          join=np.concatenate, inline_below_ms=1.0)
        for i in range(5):
            assert (await batcher.submit(np.array([i]), 1)).value.tolist() == [i * 2]
        await batcher.close()
        executor.shutdown()

    asyncio.run(scenario())
    assert threads[0].startswith("model")  # the first batch's cost is unknown: executor
    assert all(t == "MainThread" for t in threads[1:]) is inline_expected


def test_a_model_that_waits_without_cpu_goes_back_to_the_executor() -> None:
    """Its CPU time looks cheap on the executor; an inline run that holds the loop for
    its whole wait sends it back there for the next batches."""
    import threading
    import time

    threads: list[str] = []

    def run(payloads: list[np.ndarray]) -> list[np.ndarray]:
        threads.append(threading.current_thread().name)
        time.sleep(0.02)  # waiting (I/O), not computing
        return [p * 2 for p in payloads]

    async def scenario() -> None:
        executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        batcher = Batcher(run, executor=executor, slice_rows=lambda p, a, b: p[a:b],
                          join=np.concatenate, inline_below_ms=1.0)
        for i in range(6):
            assert (await batcher.submit(np.array([i]), 1)).value.tolist() == [i * 2]
        await batcher.close()
        executor.shutdown()

    asyncio.run(scenario())
    assert threads.count("MainThread") <= 1, threads
    assert all(t.startswith("model") for t in threads[-3:]), threads


def test_a_cheap_model_preempted_mid_run_is_not_pinned(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    """An inline run that took long because the OS took the CPU away (counted as an
    involuntary context switch of the thread) says nothing about the model: no pin."""
    import itertools
    import threading
    import time

    switches = itertools.count()
    monkeypatch.setattr(batcher_module, "_preemptions", lambda: next(switches))
    threads: list[str] = []

    def run(payloads: list[np.ndarray]) -> list[np.ndarray]:
        threads.append(threading.current_thread().name)
        if threading.current_thread().name == "MainThread":
            time.sleep(0.02)  # as long as a preemption on a busy machine
        return [p * 2 for p in payloads]

    async def scenario() -> Batcher[np.ndarray, np.ndarray]:
        executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        batcher = Batcher(run, executor=executor, slice_rows=lambda p, a, b: p[a:b],
                          join=np.concatenate, inline_below_ms=1.0)
        for i in range(30):  # each inline detour costs ~7 executor runs to come back
            assert (await batcher.submit(np.array([i]), 1)).value.tolist() == [i * 2]
        await batcher.close()
        executor.shutdown()
        return batcher

    batcher = asyncio.run(scenario())
    assert not batcher._pinned
    assert threads.count("MainThread") >= 2, threads  # back inline after each detour


def _sleepy_batcher(sleeps: Any) -> tuple[Any, list[str]]:
    """A batcher whose model sleeps 20 ms when ``sleeps(n)`` for its n-th inline run."""
    import threading
    import time

    threads: list[str] = []

    def run(payloads: list[np.ndarray]) -> list[np.ndarray]:
        threads.append(threading.current_thread().name)
        if threads[-1] == "MainThread" and sleeps(threads.count("MainThread")):
            time.sleep(0.02)  # waiting (I/O), not computing
        return [p * 2 for p in payloads]

    async def scenario() -> Batcher[np.ndarray, np.ndarray]:
        executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        batcher = Batcher(run, executor=executor, slice_rows=lambda p, a, b: p[a:b],
                          join=np.concatenate, inline_below_ms=1.0)
        for i in range(60):  # an inline detour costs ~7 executor runs to come back
            assert (await batcher.submit(np.array([i]), 1)).value.tolist() == [i * 2]
        await batcher.close()
        executor.shutdown()
        return batcher

    return asyncio.run(scenario()), threads


def test_a_model_that_always_waits_is_pinned_after_three_long_inline_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # No preemptions: on a busy machine (CI runs the demo beside the suite) the OS may
    # take the CPU during a sleep, and a preempted run is rightly no strike.
    monkeypatch.setattr(batcher_module, "_preemptions", lambda: 0)
    batcher, threads = _sleepy_batcher(lambda n: True)
    assert batcher._pinned
    assert threads.count("MainThread") == 3, threads


def test_a_cheap_model_that_stalled_once_in_a_while_is_not_pinned(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batcher_module, "_preemptions", lambda: 0)
    # Long inline runs with a run within budget between them: stalls, not the model.
    batcher, threads = _sleepy_batcher(lambda n: n % 2 == 1)
    assert not batcher._pinned
    assert threads.count("MainThread") > 3, threads
