"""One timer for every request's timeout: expiry, order, and other cancellations."""

from __future__ import annotations

import asyncio

import pytest

from modelport.serving.deadlines import Deadlines


async def _guarded(deadlines: Deadlines, seconds: float) -> str:
    deadline = deadlines.start()
    try:
        await asyncio.sleep(seconds)
        return "finished"
    except asyncio.CancelledError:
        if deadline.done():
            return "timed out"
        raise
    finally:
        deadline.done()


def test_slow_requests_time_out_and_fast_ones_finish() -> None:
    async def go() -> list[str]:
        deadlines = Deadlines(0.05)
        return await asyncio.gather(_guarded(deadlines, 0.2), _guarded(deadlines, 0.0),
                                    _guarded(deadlines, 0.01), _guarded(deadlines, 0.3))

    assert asyncio.run(go()) == ["timed out", "finished", "finished", "timed out"]


def test_requests_started_later_get_their_own_full_timeout() -> None:
    async def go() -> list[str]:
        deadlines = Deadlines(0.1)
        first = asyncio.ensure_future(_guarded(deadlines, 0.3))
        await asyncio.sleep(0.06)
        second = asyncio.ensure_future(_guarded(deadlines, 0.07))  # ends at 0.13 < 0.16
        return [await first, await second]

    assert asyncio.run(go()) == ["timed out", "finished"]


def test_another_cancellation_is_not_taken_for_a_timeout() -> None:
    async def go() -> None:
        deadlines = Deadlines(5.0)
        task = asyncio.ensure_future(_guarded(deadlines, 1.0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())


def test_a_new_event_loop_gets_a_working_timer() -> None:
    deadlines = Deadlines(0.05)
    for _ in range(2):  # the first loop closes with its timer still set
        assert asyncio.run(_guarded(deadlines, 0.2)) == "timed out"
