"""One loaded model version behind its own batcher and executor thread.

A ``Deployment`` is what a request finally reaches: it checks the request against the
version's signature, queues its rows, and runs merged batches on one thread so the
event loop never blocks on a model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.client import LoadedModel
from modelport.errors import ModelExecutionError, ModelportError
from modelport.serving.batcher import Batcher
from modelport.serving.metrics import ServerMetrics
from modelport.serving.rows import (
    Rows,
    TableLayout,
    concat,
    join_outputs,
    model_input,
    split_outputs,
    to_outputs,
    to_rows,
)
from modelport.serving.types import InferenceRequest, InferenceResponse, Tensor
from modelport.signature import enforce

log = logging.getLogger("modelport.serving")


@dataclass(frozen=True)
class BatchingConfig:
    """Per-model batching limits."""

    max_batch_size: int = 64
    max_latency_ms: float = 5.0
    max_queue_rows: int = 4096


class Deployment:
    """A model version ready to answer: signature check, batching, execution."""

    def __init__(self, endpoint: str, loaded: LoadedModel, batching: BatchingConfig,
                 metrics: ServerMetrics | None = None) -> None:
        self.endpoint = endpoint
        self.loaded = loaded
        self.version = loaded.version.version
        sig = loaded.signature or {}
        self.input_schema: dict[str, Any] | None = sig.get("inputs")
        self.output_schema: dict[str, Any] | None = sig.get("outputs")
        self._layout = TableLayout.of(self.input_schema)
        self._tallies = metrics.deployment(endpoint, str(self.version)) if metrics else None
        # Set by warm() when the flavor's bare-array predict matches the table path.
        self.array_predict: Callable[[Any], Any] | None = None
        # One thread per version: predict calls of one model never overlap, which most
        # estimators assume, and batching is what buys throughput.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"model-{endpoint}")
        self.batcher: Batcher[Rows, list[Tensor]] = Batcher(
            self._run_batch,
            executor=self._executor,
            slice_rows=lambda rows, start, stop: rows.slice(start, stop),
            join=join_outputs,
            max_batch_size=batching.max_batch_size,
            max_latency_ms=batching.max_latency_ms,
            max_queue_rows=batching.max_queue_rows,
            on_batch=self._observe_batch,
        )

    def _observe_batch(self, rows: int, requests: int, seconds: float) -> None:
        if self._tallies is not None:
            self._tallies.batch.observe(rows)

    def _run_batch(self, parts: list[Rows]) -> list[list[Tensor]]:
        batch = concat(parts)
        try:
            if self.array_predict is not None and batch.columns is not None:
                raw = self.array_predict(np.column_stack(list(batch.columns.values())))
            elif self.array_predict is not None:  # a table as one array, or a tensor
                raw = self.array_predict(batch.array)
            else:
                raw = self.loaded.predictor.predict(model_input(batch))
        except ModelportError:
            raise
        except Exception as exc:
            # Full detail to the log; the client gets a fixed message (5xx bodies reveal
            # nothing about the model or the payload).
            log.exception("model %s/%s failed on a batch of %d rows",
                          self.endpoint, self.version, batch.n)
            raise ModelExecutionError("the model failed to predict") from exc
        return split_outputs(to_outputs(raw, batch.n), [p.n for p in parts])

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        """Answer one request (raises ``BatcherClosedError`` while being swapped out)."""
        rows = to_rows(request, self.input_schema, self._layout)
        result = await self.batcher.submit(rows, rows.n)
        tallies = self._tallies
        if tallies is not None:
            tallies.queue.observe(result.queue_seconds)
            tallies.compute.observe(result.compute_seconds)
        return InferenceResponse(self.endpoint, self.version, result.value, id=request.id)

    def warm(self) -> float:
        """Run the stored input example once (blocking); return the seconds it took.

        Also decides the fast path: the flavor's bare-array predict is used only if it
        gives exactly the table path's answer on the example.
        """
        example = self.loaded.input_example
        started = time.perf_counter()
        if example is None:
            return 0.0
        data = enforce(self.input_schema, example)
        run = self._executor.submit
        expected = run(self.loaded.predictor.predict, data).result(timeout=300)
        fast = self.loaded.flavor.array_predict(self.loaded.predictor, self.input_schema)
        if fast is not None and self.input_schema is not None:
            try:
                if self.input_schema.get("type") == "dataframe":
                    names = [c["name"] for c in self.input_schema["columns"]]
                    data = np.column_stack([data[n].to_numpy() for n in names])
                got = run(fast, data).result(300)
                same = _same(expected, got)
            except Exception:  # the fast path is an optimisation: any failure just skips it
                same = False
            self.array_predict = fast if same else None
            log.info("%s/%s: array fast path %s", self.endpoint, self.version,
                     "on" if same else "off (differs from the table path)")
        return time.perf_counter() - started

    async def close(self) -> None:
        """Finish queued requests, then release the executor thread."""
        await self.batcher.close()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)


def _same(a: Any, b: Any) -> bool:
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return False
    if x.dtype.kind == "f" and y.dtype.kind == "f":
        return bool(np.array_equal(x, y, equal_nan=True))
    return bool(np.array_equal(x, y))
