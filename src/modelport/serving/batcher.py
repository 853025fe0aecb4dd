"""Adaptive batching: requests arriving together are merged into one model call.

One asyncio task per model pulls parts from a bounded queue, forms a batch and runs it
on the model's own executor thread (off the event loop), then hands each part its
own results back through futures. The batcher knows nothing of models or protocols:
it moves opaque payloads, cut and joined by the functions it is given.

Policy, written by hand because no library fits an asyncio server with row-counted,
splittable requests (Ray's ``@serve.batch`` counts calls, not rows, and needs Ray):

- a batch never holds more than ``max_batch_size`` rows: a request with more rows is
  cut into parts, answered when all its parts are done;
- a batch is dispatched when it is full, when its oldest part has waited
  ``max_latency_ms``, or as soon as it holds as many requests as the previous batch
  did, so a lone client (concurrency 1) never waits for company that is not coming
  while a busy model waits a little to fill its batches;
- when the queue holds ``max_queue_rows`` rows, new requests get ``OverloadedError``
  (HTTP 503 with Retry-After) instead of an ever-growing queue;
- if a merged batch fails, each request in it is retried alone, so one bad request
  cannot fail its neighbours;
- a model whose batches run in under ``inline_below_ms`` on average runs on the event
  loop itself: for such models the thread hop costs more than the call.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from modelport.errors import OverloadedError

P = TypeVar("P")  # payload: the rows of one request (or part of one)
R = TypeVar("R")  # result for one payload


PIN_FACTOR = 5.0  # an inline run this many times over the budget is a strike ...
PIN_STRIKES = 3  # ... and this many in a row (no run within budget between) pin it

try:
    import resource

    _RUSAGE_THREAD = resource.RUSAGE_THREAD

    def _preemptions() -> int:
        """Times the OS took the CPU from this thread (involuntary context switches)."""
        return resource.getrusage(_RUSAGE_THREAD).ru_nivcsw
except (ImportError, AttributeError):  # no per-thread counters: every long run pins

    def _preemptions() -> int:
        return 0


class BatcherClosedError(Exception):
    """Internal: the batcher is draining for a hot swap; the caller retries elsewhere."""


@dataclass(slots=True)  # one per request: a frozen dataclass's init costs twice as much
class BatchResult(Generic[R]):
    """A request's result with where its time went."""

    value: R
    queue_seconds: float
    compute_seconds: float
    batch_rows: int


class _Request(Generic[R]):
    """Collects the results of a request's parts and resolves its future when all are in."""

    __slots__ = ("batch_rows", "compute", "future", "parts", "queue_wait", "results")

    def __init__(self, future: asyncio.Future[Any], parts: int) -> None:
        self.future = future
        self.parts = parts
        self.results: list[Any] = [None] * parts
        self.queue_wait = 0.0
        self.compute = 0.0
        self.batch_rows = 0


class _Part(Generic[P]):
    __slots__ = ("enqueued", "index", "last", "payload", "request", "rows")

    def __init__(self, payload: P, rows: int, request: _Request[Any], index: int, last: bool,
                 enqueued: float) -> None:
        self.payload = payload
        self.rows = rows
        self.request = request
        self.index = index
        self.last = last  # the request's last part: taking it leaves the request unqueued
        self.enqueued = enqueued


class Batcher(Generic[P, R]):
    """Merges concurrent requests into batches of at most ``max_batch_size`` rows."""

    def __init__(
        self,
        run_batch: Callable[[list[P]], Sequence[R]],
        *,
        executor: Executor,
        slice_rows: Callable[[P, int, int], P],
        join: Callable[[list[R]], R],
        max_batch_size: int = 64,
        max_latency_ms: float = 5.0,
        max_queue_rows: int = 4096,
        on_batch: Callable[[int, int, float], None] | None = None,
        inline_below_ms: float = 1.0,
    ) -> None:
        if max_batch_size < 1 or max_queue_rows < 1 or max_latency_ms < 0:
            raise ValueError("max_batch_size and max_queue_rows must be >= 1, latency >= 0")
        self._run_batch = run_batch
        self._executor = executor
        self._slice = slice_rows
        self._join = join
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000.0
        self.max_queue_rows = max_queue_rows
        self._on_batch = on_batch
        self.inline_below = inline_below_ms / 1000.0
        self._cost: float | None = None  # moving average of a batch's run time (s)
        self._pinned = False  # True: never inline again (see _timed)
        self._strikes = 0  # inline runs in a row far over budget, not preempted
        self._queue: deque[_Part[P]] = deque()
        self._queued_rows = 0
        self._queued_requests = 0  # requests with a part still queued
        # The loop sleeps on this future; submit resolves it only when the loop has
        # something to do (a first request, or a batch now due), not on every request.
        self._waiter: asyncio.Future[None] | None = None
        self._forming = False  # the loop is waiting for a batch to fill, not idle
        self._running = False  # the loop is running a batch (maybe on the executor)
        self._closed = False
        self._expected_requests = 1
        self._task: asyncio.Task[None] | None = None

    @property
    def queued_rows(self) -> int:
        """Rows waiting (not yet in a running batch)."""
        return self._queued_rows

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, payload: P, rows: int) -> BatchResult[R]:
        """Queue ``rows`` rows and wait for their results."""
        if self._closed:
            raise BatcherClosedError
        if rows < 1:
            raise ValueError("a request must carry at least one row")
        if self._queued_rows and self._queued_rows + rows > self.max_queue_rows:
            raise OverloadedError(
                f"the model's queue is full ({self._queued_rows} rows waiting); retry shortly",
                retry_after=1.0,
            )
        self.start()
        if (rows <= self.max_batch_size and not self._queue and not self._running
                and self._expected_requests <= 1 and self._cost is not None
                and self._cost < self.inline_below and not self._pinned):
            return self._run_lone(payload, rows)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        size = self.max_batch_size
        if rows <= size:
            request: _Request[R] = _Request(future, 1)
            self._queue.append(_Part(payload, rows, request, 0, True, now))
        else:
            starts = range(0, rows, size)
            request = _Request(future, len(starts))
            for i, start in enumerate(starts):
                stop = min(start + size, rows)
                self._queue.append(_Part(self._slice(payload, start, stop), stop - start,
                                         request, i, i == len(starts) - 1, now))
        self._queued_rows += rows
        self._queued_requests += 1
        if not self._forming or self._due():
            self._wake()
        value = await future
        return BatchResult(value, request.queue_wait, request.compute, request.batch_rows)

    def _run_lone(self, payload: P, rows: int) -> BatchResult[R]:
        """A request alone on an idle inline model: its batch of one, run right here.

        What the loop would do at once (a lone request is due immediately), minus the two
        task switches through the loop and the future between them.
        """
        started = time.monotonic()
        (result,) = self._timed([payload], True)
        elapsed = time.monotonic() - started
        if self._on_batch is not None:
            self._on_batch(rows, 1, elapsed)
        return BatchResult(result, 0.0, elapsed, rows)

    async def close(self) -> None:
        """Stop taking requests, finish every queued one, then end the loop."""
        self._closed = True
        self._wake()
        if self._task is not None:
            await self._task

    # -- the loop -----------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _sleep(self, timeout: float | None) -> None:
        """Until ``_wake`` is called, or ``timeout`` seconds pass."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, self._wake)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _due(self) -> bool:
        """A batch should go now: it is full, or as many requests as last time are in."""
        return (self._queued_rows >= self.max_batch_size
                or self._queued_requests >= self._expected_requests)

    def _take(self) -> tuple[list[_Part[P]], int, int]:
        """The next batch from the queue: (parts, rows, distinct requests)."""
        batch: list[_Part[P]] = []
        rows = requests = 0
        queue = self._queue
        last: _Request[Any] | None = None
        while queue and rows + queue[0].rows <= self.max_batch_size:
            part = queue.popleft()
            batch.append(part)
            rows += part.rows
            if part.request is not last:  # a request's parts are queued side by side
                requests += 1
                last = part.request
            if part.last:
                self._queued_requests -= 1
        self._queued_rows -= rows
        return batch, rows, requests

    async def _collect(self) -> tuple[list[_Part[P]], int, int]:
        deadline = self._queue[0].enqueued + self.max_latency
        self._forming = True
        try:
            while not self._closed and not self._due():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await self._sleep(remaining)
        finally:
            self._forming = False
        return self._take()

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                if self._closed:
                    return
                await self._sleep(None)
                continue
            batch, rows, requests = await self._collect()
            self._expected_requests = max(1, requests)
            started = time.monotonic()
            for part in batch:
                part.request.queue_wait = max(part.request.queue_wait, started - part.enqueued)
            try:
                self._running = True
                results = await self._execute([p.payload for p in batch])
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"run_batch returned {len(results)} results for {len(batch)} payloads"
                    )
            except Exception as exc:
                if len(batch) == 1:
                    self._fail(batch[0], exc)
                else:
                    await self._run_alone(batch)
                continue
            finally:
                self._running = False
            elapsed = time.monotonic() - started
            if self._on_batch is not None:
                self._on_batch(rows, len(batch), elapsed)
            for part, result in zip(batch, results, strict=True):
                self._deliver(part, result, elapsed, rows)

    async def _execute(self, payloads: list[P]) -> Sequence[R]:
        """Run a batch: inline when batches have been cheaper than a thread hop, else on
        the executor so the event loop keeps serving while the model works."""
        if self._cost is not None and self._cost < self.inline_below and not self._pinned:
            # A small model holds the GIL for its whole call anyway, so running it on the
            # loop thread blocks nothing the thread hop would have freed, and saves the
            # hop's wake-up and hand-back (tens to hundreds of µs per batch).
            return self._timed(payloads, True)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._timed, payloads, False)

    def _timed(self, payloads: list[P], inline: bool) -> Sequence[R]:
        # The cost that decides inline or not is what the call would hold the loop for.
        # Inline, that is its wall time. On the executor thread it is its CPU time: its
        # wall time there includes waiting for the GIL the loop holds (up to the 5 ms
        # switch interval on a shared core), which would keep a cheap model off the loop
        # for good. A model that waits without the GIL (I/O) looks cheap on the executor;
        # its next inline run measures the wait and sends it back there.
        # Pinned: inline runs that held the loop far beyond the budget (a model that
        # waits on I/O looks cheap by CPU time) keep the model on the executor for good,
        # so it cannot block the loop again every other batch. It takes PIN_STRIKES such
        # runs in a row, and a run the OS preempted is no strike: on a busy machine a
        # preemption, or another thread holding the GIL for its 5 ms switch interval,
        # stretches a 20 µs predict past the budget now and then, and pinning a cheap
        # model for good costs it a thread hop per batch (twice the loop's work at c=1).
        wall = time.perf_counter()
        mark = _preemptions() if inline else time.thread_time()
        results = self._run_batch(payloads)
        if inline:
            took = time.perf_counter() - wall
            if took <= PIN_FACTOR * self.inline_below:
                self._strikes = 0
            elif _preemptions() == mark:
                self._strikes += 1
                self._pinned = self._strikes >= PIN_STRIKES
        else:
            took = time.thread_time() - mark
        self._cost = took if self._cost is None else 0.8 * self._cost + 0.2 * took
        return results

    async def _run_alone(self, batch: list[_Part[P]]) -> None:
        """A merged batch failed: run each part alone so only the culprit fails."""
        for part in batch:
            started = time.monotonic()
            try:
                (result,) = await self._execute([part.payload])
            except Exception as exc:
                self._fail(part, exc)
                continue
            self._deliver(part, result, time.monotonic() - started, part.rows)

    def _deliver(self, part: _Part[P], result: R, elapsed: float, rows: int) -> None:
        req = part.request
        req.results[part.index] = result
        req.compute += elapsed
        req.batch_rows = max(req.batch_rows, rows)
        req.parts -= 1
        if req.parts == 0 and not req.future.done():
            value = req.results[0] if len(req.results) == 1 else self._join(req.results)
            req.future.set_result(value)

    @staticmethod
    def _fail(part: _Part[Any], exc: BaseException) -> None:
        if not part.request.future.done():
            part.request.future.set_exception(exc)
