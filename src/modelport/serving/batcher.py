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


class BatcherClosedError(Exception):
    """Internal: the batcher is draining for a hot swap; the caller retries elsewhere."""


@dataclass(frozen=True)
class BatchResult(Generic[R]):
    """A request's result with where its time went."""

    value: R
    queue_seconds: float
    compute_seconds: float
    batch_rows: int


class _Request(Generic[R]):
    """Collects the results of a request's parts and resolves its future when all are in."""

    __slots__ = ("batch_rows", "compute", "future", "parts", "queue_wait", "results", "started")

    def __init__(self, future: asyncio.Future[Any], parts: int) -> None:
        self.future = future
        self.parts = parts
        self.results: list[Any] = [None] * parts
        self.queue_wait = 0.0
        self.compute = 0.0
        self.batch_rows = 0
        self.started = time.monotonic()


@dataclass
class _Part(Generic[P]):
    payload: P
    rows: int
    request: _Request[Any]
    index: int
    enqueued: float


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
        self._queue: deque[_Part[P]] = deque()
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        starts = range(0, rows, self.max_batch_size)
        request: _Request[R] = _Request(future, len(starts))
        now = time.monotonic()
        for i, start in enumerate(starts):
            stop = min(start + self.max_batch_size, rows)
            part = payload if len(starts) == 1 else self._slice(payload, start, stop)
            self._queue.append(_Part(part, stop - start, request, i, now))
        self._queued_rows += rows
        self._wakeup.set()
        value = await future
        return BatchResult(value, request.queue_wait, request.compute, request.batch_rows)

    async def close(self) -> None:
        """Stop taking requests, finish every queued one, then end the loop."""
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    # -- the loop -----------------------------------------------------------------------

    def _take(self, batch: list[_Part[P]], rows: int) -> int:
        while self._queue and rows + self._queue[0].rows <= self.max_batch_size:
            part = self._queue.popleft()
            self._queued_rows -= part.rows
            batch.append(part)
            rows += part.rows
        return rows

    async def _collect(self) -> list[_Part[P]]:
        batch: list[_Part[P]] = []
        rows = self._take(batch, 0)
        deadline = batch[0].enqueued + self.max_latency
        while (
            rows < self.max_batch_size
            and not self._closed
            and len({id(p.request) for p in batch}) < self._expected_requests
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
            if self._queue and rows + self._queue[0].rows > self.max_batch_size:
                break
            rows = self._take(batch, rows)
        return batch

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = await self._collect()
            self._expected_requests = max(1, len({id(p.request) for p in batch}))
            rows = sum(p.rows for p in batch)
            started = time.monotonic()
            for part in batch:
                part.request.queue_wait = max(part.request.queue_wait, started - part.enqueued)
            try:
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
            elapsed = time.monotonic() - started
            self._cost = elapsed if self._cost is None else 0.8 * self._cost + 0.2 * elapsed
            if self._on_batch is not None:
                self._on_batch(rows, len(batch), elapsed)
            for part, result in zip(batch, results, strict=True):
                self._deliver(part, result, elapsed, rows)

    async def _execute(self, payloads: list[P]) -> Sequence[R]:
        """Run a batch: inline when batches have been cheaper than a thread hop, else on
        the executor so the event loop keeps serving while the model works."""
        if self._cost is not None and self._cost < self.inline_below:
            # A small model holds the GIL for its whole call anyway, so running it on the
            # loop thread blocks nothing the thread hop would have freed, and saves the
            # hop's wake-up and hand-back (tens to hundreds of µs per batch).
            return self._run_batch(payloads)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run_batch, payloads)

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
