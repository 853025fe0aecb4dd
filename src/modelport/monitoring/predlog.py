"""The prediction log: answered requests sampled off the request path into Parquet.

A server calls ``PredictionLog.offer`` on its event loop for every answered request
(and every shadow answer). ``offer`` never blocks and never raises for a full buffer:

* sampled out: one CRC-32 of the request id and a comparison, counted ``sampled_out``;
* sampled in: a tuple of references (no copy, no conversion) appended to the buffer;
* buffer full (the writer is behind) or log closed: counted ``dropped``.

Every counter counts rows (a request of 10 rows sampled out adds 10).

A background thread (:mod:`modelport.monitoring.writer`) turns batches into Parquet
(:mod:`modelport.monitoring.tabulate`) and counts ``written`` and ``failed`` rows.

Sampling is deterministic: request ``id`` is logged at rate ``r`` iff
``zlib.crc32(id.encode("utf-8")) < r * 2**32``. Every worker and every restart decides
the same way, a shadow answer is logged exactly when its stable answer is, and a
labelling system can tell whether an id it labels was ever in the log.
"""

from __future__ import annotations

import os
import socket
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError
from modelport.monitoring.layout import PREDICTIONS
from modelport.monitoring.tabulate import NamedArray, feature_names, prediction_tables
from modelport.monitoring.writer import BackgroundWriter, WriterConfig

#: The counters ``stats`` reports per endpoint (and a server exports as metrics).
COUNTERS = ("written", "dropped", "sampled_out", "failed")
_FULL = 1 << 32


class Variant(StrEnum):
    """Which side of a split produced a logged answer."""

    STABLE = "stable"
    CANDIDATE = "candidate"
    SHADOW = "shadow"


def threshold(rate: float) -> int:
    """The CRC-32 bound below which a request id is sampled at ``rate``."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
        raise InvalidInputError(f"a sample rate must be a number in [0, 1], got {rate!r}")
    return int(rate * _FULL)


def is_sampled(request_id: str, rate: float) -> bool:
    """Whether ``request_id`` is logged at ``rate`` (the rule ``offer`` applies)."""
    return zlib.crc32(request_id.encode("utf-8")) < threshold(rate)


def default_worker_id() -> str:
    """host_pid: distinct per process on a host, readable in file names."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"
    return f"{host}_{os.getpid()}"


# The buffer holds records for seconds, thousands at a time, so they are built only of
# exact tuples, strings, numbers and arrays: the cyclic GC stops tracking such tuples at
# their first collection. A NamedTuple is a tuple subclass, which it tracks for good, and
# a dict inside a record keeps the record tracked: with those, each full collection of
# a busy server walked ~5 objects per buffered request (50-80 ms pauses on this machine).
_Array = tuple[str, np.ndarray[Any, Any]]
MAX_SCHEMAS = 256  # versions whose feature names are remembered (more: recomputed)


def _arrays(tensors: Sequence[NamedArray]) -> tuple[_Array, ...]:
    """The tensors as (name, array) pairs, without a list for the one-tensor case: the
    offer runs on the event loop for every answered request."""
    if len(tensors) == 1:
        t = tensors[0]
        return ((t.name, t.data),)
    return tuple([(t.name, t.data) for t in tensors])


class _Endpoint:
    __slots__ = ("dropped", "failed", "sampled_out", "threshold", "written")

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.sampled_out = self.dropped = 0  # event-loop side only
        self.written = self.failed = 0  # writer-thread side only


class PredictionLog:
    """Samples answered requests per endpoint and writes them to Parquet under ``root``.

    ``sample_rate`` is the default rate; ``sample_rates`` overrides it per endpoint.
    ``offer`` is meant for one thread (the server's event loop); ``flush``, ``close``
    and ``stats`` may be called from any.
    """

    def __init__(self, root: str | Path, *, worker_id: str | None = None,
                 sample_rate: float = 1.0, sample_rates: Mapping[str, float] | None = None,
                 max_queue_rows: int = 100_000, flush_rows: int = 10_000,
                 flush_seconds: float = 5.0,
                 before_write: Callable[[int], None] | None = None) -> None:
        self.root = Path(root)
        self._default = threshold(sample_rate)
        self._rates = {name: threshold(r) for name, r in (sample_rates or {}).items()}
        self._endpoints: dict[str, _Endpoint] = {}
        self._writer = BackgroundWriter(
            self.root, PREDICTIONS, worker_id or default_worker_id(), prediction_tables,
            WriterConfig(max_queue_rows, flush_rows, flush_seconds),
            before_write=before_write, on_written=self._written)
        self.worker_id = self._writer.worker_id
        # id(schema) -> (schema, its feature names); the schema is kept so its id is not
        # reused by another while remembered.
        self._features: dict[int, tuple[Mapping[str, Any], tuple[str, ...] | None]] = {}

    def set_sample_rate(self, endpoint: str, rate: float) -> None:
        """Change one endpoint's rate (e.g. on a configuration reload)."""
        bound = threshold(rate)
        self._rates[endpoint] = bound
        self._state(endpoint).threshold = bound

    def sample_rate(self, endpoint: str) -> float:
        """The rate ``endpoint`` is sampled at."""
        return self._rates.get(endpoint, self._default) / _FULL

    def _state(self, endpoint: str) -> _Endpoint:
        found = self._endpoints.get(endpoint)
        if found is None:
            found = self._endpoints[endpoint] = _Endpoint(
                self._rates.get(endpoint, self._default))
        return found

    def offer(self, endpoint: str, request_id: str, version: int, variant: str,
              inputs: Sequence[NamedArray], outputs: Sequence[NamedArray],
              latency_ms: float, schema: Mapping[str, Any] | None = None) -> bool:
        """Log one answered request if sampled and there is room; True if buffered.

        ``inputs``/``outputs``: the request's and answer's tensors (kept by reference:
        do not mutate them afterwards); ``schema``: the answering version's input
        schema, whose column names name the features of a single 2-D table tensor.
        """
        st = self._endpoints.get(endpoint) or self._state(endpoint)
        data = inputs[0].data if inputs else None
        rows = data.shape[0] if data is not None and data.ndim else 1
        bound = st.threshold
        if bound < _FULL and (bound == 0 or zlib.crc32(request_id.encode()) >= bound):
            st.sampled_out += rows
            return False
        record = (endpoint, time.time(), request_id, version, variant, _arrays(inputs),
                  _arrays(outputs), latency_ms, self._feature_names(schema), rows)
        if self._writer.put(record, rows):
            return True
        st.dropped += rows
        return False

    def _feature_names(self, schema: Mapping[str, Any] | None) -> tuple[str, ...] | None:
        if schema is None:
            return None
        known = self._features.get(id(schema))
        if known is not None and known[0] is schema:
            return known[1]
        names = feature_names(schema)
        found = tuple(names) if names is not None else None
        if len(self._features) < MAX_SCHEMAS:
            self._features[id(schema)] = (schema, found)
        return found

    def _written(self, endpoint: str, rows: int, ok: bool) -> None:
        st = self._state(endpoint)
        if ok:
            st.written += rows
        else:
            st.failed += rows

    @property
    def queued_rows(self) -> int:
        """Rows buffered and not yet taken by the writer thread."""
        return self._writer.queued_rows

    def stats(self) -> dict[str, dict[str, int]]:
        """Per endpoint, in rows: ``written`` and ``failed`` (by the writer thread),
        ``dropped`` (buffer full or log closed) and ``sampled_out``."""
        return {name: {"written": st.written, "dropped": st.dropped,
                       "sampled_out": st.sampled_out, "failed": st.failed}
                for name, st in list(self._endpoints.items())}

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything offered so far (blocking); False on timeout."""
        return self._writer.flush(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Stop accepting, write what is buffered, stop the writer thread."""
        return self._writer.close(timeout)

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


__all__ = ["COUNTERS", "PredictionLog", "Variant", "default_worker_id", "is_sampled",
           "threshold"]
