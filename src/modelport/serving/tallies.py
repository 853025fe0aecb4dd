"""The per-request metrics as plain numbers, exported by a custom Prometheus collector.

Every answered request used to make about five prometheus-client calls (a counter, the
latency, queue and compute histograms, the in-flight gauge up and down), each taking a
lock and checking the metric is observable: ~9 µs of a small model's request. Here a
request adds to plain ints and floats instead, and ``TallyCollector.collect`` turns
them into the families prometheus-client would have exported, with the same names,
help, types, labels, buckets and ``_created`` samples, at scrape time. Recording and
scraping both happen on the server's event loop, so nothing needs a lock.

A series appears once something was recorded on it, as a prometheus-client child
appears once ``labels()`` was called right before its first ``inc``/``observe``.

This cannot aggregate across processes: with ``--workers N`` (multiprocess mode)
``ServerMetrics`` records through prometheus-client's file-backed metrics instead
(``ChildTallies``), with the same calls.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import metrics as _prom_metrics
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

REQUESTS = ("modelport_requests", "Inference requests by outcome.")
LATENCY = ("modelport_request_duration_seconds", "Time from request read to response.")
QUEUE = ("modelport_queue_duration_seconds", "Time a request waited for its batch.")
COMPUTE = ("modelport_compute_duration_seconds", "Model execution time of a request's batch.")
BATCH = ("modelport_batch_size_rows", "Rows per model call.")
INFLIGHT = ("modelport_inflight_requests", "Requests being processed.")
LABELS = ("model", "version")


class Histogram:
    """One histogram series: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("bounds", "counts", "created", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # sorted upper bounds, +Inf last
        self.counts = [0] * len(bounds)
        self.total = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose bound is >= it, as prometheus-client."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class Level:
    """A gauge series moved up and down by one (requests in flight)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        """One more."""
        self.value += 1

    def dec(self) -> None:
        """One fewer."""
        self.value -= 1


def bounds_of(buckets: Sequence[float]) -> tuple[float, ...]:
    """Bucket bounds as prometheus-client keeps them: floats, +Inf appended."""
    bounds = [float(b) for b in buckets]
    if bounds[-1] != float("inf"):
        bounds.append(float("inf"))
    return tuple(bounds)


class DeploymentTallies:
    """One (model, version)'s request counts and histograms."""

    __slots__ = ("batch", "compute", "created", "latency", "queue", "requests")

    def __init__(self, latency: tuple[float, ...], batch: tuple[float, ...]) -> None:
        self.requests: dict[tuple[str, int], int] = {}  # (protocol, status) -> count
        self.created: dict[tuple[str, int], float] = {}
        self.latency = Histogram(latency)
        self.queue = Histogram(latency)
        self.compute = Histogram(latency)
        self.batch = Histogram(batch)

    def answered(self, protocol: str, status: int) -> None:
        """Count one request answered with ``status``."""
        key = (protocol, status)
        requests = self.requests
        if key in requests:
            requests[key] += 1
        else:
            requests[key] = 1
            self.created[key] = time.time()


class TallyCollector:
    """Exports every ``DeploymentTallies`` and in-flight ``Level`` of one server."""

    def __init__(self, latency_buckets: Sequence[float], batch_buckets: Sequence[float]) -> None:
        self._latency = bounds_of(latency_buckets)
        self._batch = bounds_of(batch_buckets)
        self.deployments: dict[tuple[str, str], DeploymentTallies] = {}
        self.inflight: dict[str, Level] = {}

    def deployment(self, model: str, version: str) -> DeploymentTallies:
        """The tallies of (``model``, ``version``), created on first use."""
        key = (model, version)
        found = self.deployments.get(key)
        if found is None:
            found = self.deployments[key] = DeploymentTallies(self._latency, self._batch)
        return found

    def level(self, model: str) -> Level:
        """``model``'s in-flight gauge, created on first use."""
        found = self.inflight.get(model)
        if found is None:
            found = self.inflight[model] = Level()
        return found

    def describe(self) -> list[Metric]:
        """The families, without samples (the registry checks names with these)."""
        requests, histograms, inflight = self._families()
        return [requests, *histograms, inflight]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, list[HistogramMetricFamily],
                             GaugeMetricFamily]:
        return (CounterMetricFamily(*REQUESTS, labels=(*LABELS, "protocol", "status")),
                [HistogramMetricFamily(*names, labels=LABELS)
                 for names in (LATENCY, QUEUE, COMPUTE, BATCH)],
                GaugeMetricFamily(*INFLIGHT, labels=("model",)))

    def collect(self) -> Iterator[Metric]:
        """The families with a sample set per series recorded so far."""
        created = getattr(_prom_metrics, "_use_created", True)  # honours disable_created_metrics
        requests, histograms, inflight = self._families()
        latency, queue, compute, batch = histograms
        for (model, version), dep in list(self.deployments.items()):
            for key, count in list(dep.requests.items()):
                requests.add_metric([model, version, key[0], str(key[1])], count,
                                    created=dep.created[key] if created else None)
            for family, histogram in ((latency, dep.latency), (queue, dep.queue),
                                      (compute, dep.compute), (batch, dep.batch)):
                _add_histogram(family, [model, version], histogram, created)
        for model, level in list(self.inflight.items()):
            inflight.add_metric([model], level.value)
        yield from (requests, *histograms, inflight)


def _add_histogram(family: HistogramMetricFamily, labels: list[str], histogram: Histogram,
                   created: bool) -> None:
    counts = list(histogram.counts)
    if not any(counts):
        return  # never observed: prometheus-client would not have made the child yet
    buckets, acc = [], 0.0
    for bound, count in zip(histogram.bounds, counts, strict=True):
        acc += count
        buckets.append((floatToGoString(bound), acc))
    family.add_metric(labels, buckets, histogram.total)
    if created:
        family.add_sample(family.name + "_created", dict(zip(LABELS, labels, strict=True)),
                          histogram.created)


class _LazyChild:
    """A prometheus-client child made on its first observation (as ``child`` would)."""

    __slots__ = ("_child", "_labels", "_metric")

    def __init__(self, metric: Any, labels: tuple[str, ...]) -> None:
        self._metric, self._labels, self._child = metric, labels, None

    def observe(self, value: float) -> None:
        child = self._child
        if child is None:
            child = self._child = self._metric.labels(*self._labels)
        child.observe(value)


class ChildTallies:
    """``DeploymentTallies``' calls on prometheus-client metrics (multiprocess mode)."""

    __slots__ = ("_children", "_labels", "_requests", "batch", "compute", "latency", "queue")

    def __init__(self, requests: Any, latency: Any, queue: Any, compute: Any, batch: Any,
                 labels: tuple[str, str]) -> None:
        self._requests, self._labels = requests, labels
        self._children: dict[tuple[str, int], Any] = {}
        self.latency = _LazyChild(latency, labels)
        self.queue = _LazyChild(queue, labels)
        self.compute = _LazyChild(compute, labels)
        self.batch = _LazyChild(batch, labels)

    def answered(self, protocol: str, status: int) -> None:
        """Count one request answered with ``status``."""
        key = (protocol, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._requests.labels(*self._labels, protocol,
                                                                  str(status))
        child.inc()


__all__ = ["ChildTallies", "DeploymentTallies", "Histogram", "Level", "TallyCollector",
           "bounds_of"]
