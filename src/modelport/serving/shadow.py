"""Shadow traffic: a copy of each request goes to the candidate, in the background.

Stable has already answered the client when the copy is sent; the copy never delays
or changes that answer. When the candidate's queue is full the copy is dropped (and
counted) instead of queueing without bound. The candidate's answer is compared with
stable's row by row (equal labels, ``np.isclose`` for floats) into its counters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np

from modelport.errors import OverloadedError
from modelport.monitoring.predlog import PredictionLog
from modelport.serving.batcher import BatcherClosedError
from modelport.serving.deployment import Deployment
from modelport.serving.metrics import ServerMetrics
from modelport.serving.traffic import VersionCounter
from modelport.serving.types import InferenceRequest, Tensor

log = logging.getLogger("modelport.serving")


def agreement(stable: list[Tensor], candidate: list[Tensor]) -> tuple[int, int]:
    """(rows compared, rows that agree) of two answers' first output tensors."""
    if not stable:
        return 0, 0
    x = np.asarray(stable[0].data)
    n = int(x.shape[0]) if x.ndim else 1
    if not candidate:
        return n, 0
    y = np.asarray(candidate[0].data)
    if x.shape != y.shape or n == 0:
        return n, 0
    a, b = x.reshape(n, -1), y.reshape(n, -1)
    numeric = a.dtype.kind in "fiub" and b.dtype.kind in "fiub"
    if numeric and "f" in (a.dtype.kind, b.dtype.kind):
        same = np.isclose(a, b, equal_nan=True)
    else:
        same = np.asarray(a == b)
        if same.shape != a.shape:  # incomparable types: numpy gave one scalar
            return n, 0
    return n, int(np.count_nonzero(same.all(axis=1)))


class Shadow:
    """Sends copies to a candidate and records how they compare."""

    def __init__(self, metrics: ServerMetrics | None = None,
                 predictions: PredictionLog | None = None) -> None:
        self.metrics = metrics
        self.predictions = predictions  # logs shadow answers, variant "shadow"
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, candidate: Deployment, counter: VersionCounter,
             request: InferenceRequest, stable_outputs: list[Tensor]) -> None:
        """Queue a copy of ``request`` on ``candidate`` unless its queue is full."""
        batcher = candidate.batcher
        if batcher.queued_rows + request.rows > batcher.max_queue_rows:
            self._drop(candidate, counter)
            return
        task = asyncio.get_running_loop().create_task(
            self._run(candidate, counter, request, stable_outputs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, candidate: Deployment, counter: VersionCounter,
                   request: InferenceRequest, stable_outputs: list[Tensor]) -> None:
        started = time.perf_counter()
        try:
            answer = await candidate.infer(request)
        except BatcherClosedError:
            return  # the candidate was retired meanwhile: nobody wants the comparison
        except OverloadedError:
            self._drop(candidate, counter)
            return
        except Exception as exc:
            counter.record(time.perf_counter() - started, False)
            log.debug("shadow copy of %s failed on version %d: %s", request.id,
                      candidate.version, exc)
            return
        outputs = answer.outputs
        elapsed = time.perf_counter() - started
        counter.record(elapsed, True, outputs[0].data if outputs else None)
        if self.predictions is not None:
            self.predictions.offer(candidate.endpoint, request.id or "", candidate.version,
                                   "shadow", request.inputs, outputs, elapsed * 1000.0,
                                   candidate.input_schema)
        counter.record_shadow(*agreement(stable_outputs, outputs))

    def _drop(self, candidate: Deployment, counter: VersionCounter) -> None:
        counter.drop()
        if self.metrics is not None:
            m = self.metrics
            m.child(m.shadow_dropped, candidate.endpoint, str(candidate.version)).inc()

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (a bounded time) for copies in flight, as a server stops."""
        pending: Any = list(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=timeout)


__all__ = ["Shadow", "agreement"]
