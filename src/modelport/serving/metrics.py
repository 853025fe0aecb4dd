"""Every Prometheus metric the server exports, named once.

Metrics live in a ``CollectorRegistry`` made per app (no module-level state). With
``--workers N`` the processes share ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``
aggregates them with prometheus-client's multiprocess collector.

The metrics every request touches (requests, latency, queue and compute time, batch
size, in flight) are recorded through ``deployment()`` and ``inflight_of()``: plain
numbers exported by a custom collector in one process (``tallies.py``), prometheus-client
metrics in multiprocess mode, where only its files aggregate across workers.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from modelport.serving import tallies
from modelport.serving.tallies import ChildTallies, DeploymentTallies, Level, TallyCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    """The server's metrics, registered on their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode values are written to files and collected at scrape time;
        # metric objects still need a registry, but not the one we expose.
        reg = CollectorRegistry() if self.multiprocess else self.registry
        labels = ("model", "version")
        self._tallies: dict[tuple[str, str], DeploymentTallies | ChildTallies] = {}
        self._collector: TallyCollector | None = None
        if self.multiprocess:
            self._per_request(reg)
        else:  # registered first: the families come out in the order they always did
            self._collector = TallyCollector(LATENCY_BUCKETS, BATCH_BUCKETS)
            self.registry.register(self._collector)
        self.load_time = Gauge(
            "modelport_model_load_seconds", "Time to load and warm a model version.", labels,
            registry=reg, multiprocess_mode="livemax",
        )
        self.loaded = Gauge(
            "modelport_model_loaded", "1 for each model version currently served.", labels,
            registry=reg, multiprocess_mode="livemax",
        )
        self.shadow_dropped = Counter(
            "modelport_shadow_dropped", "Shadow copies not sent: the candidate's queue was full.",
            labels, registry=reg,
        )
        # Monitoring: the prediction log's counters (synced from PredictionLog.stats),
        # feedback, and the gauges the monitoring loop computes (serving/monitor.py).
        self.predlog_rows = Counter(
            "modelport_prediction_log_rows", "Prediction log rows by outcome: written, "
            "dropped (buffer full), sampled_out, failed (write error).",
            ("model", "outcome"), registry=reg,
        )
        self.predlog_queued = Gauge(
            "modelport_prediction_log_queued_rows", "Rows waiting for the log's writer.",
            registry=reg, multiprocess_mode="livesum",
        )
        self.feedback = Counter(
            "modelport_feedback_labels", "Labels accepted by the feedback route.",
            ("model",), registry=reg,
        )
        self.label_log_rows = Counter(
            "modelport_label_log_rows", "Label log rows by outcome: written, dropped "
            "(buffer full, answered 503), failed (write error).",
            ("model", "outcome"), registry=reg,
        )
        self.realized_labels = Gauge(
            "modelport_realized_labels", "Labels received for the last hour's predictions "
            "by kind: received, unknown (no logged prediction has the id), duplicate.",
            ("model", "kind"), registry=reg, multiprocess_mode="livemax",
        )
        self.realized = Gauge(
            "modelport_realized_metric", "Realized metric of the last hour's labelled "
            "predictions.", ("model", "version", "metric"), registry=reg,
            multiprocess_mode="livemax",
        )
        self.drift_score = Gauge(
            "modelport_drift_score", "Drift statistic of a feature of the last hour against "
            "the reference profile.", ("model", "version", "feature"), registry=reg,
            multiprocess_mode="livemax",
        )
        self.drift_detected = Gauge(
            "modelport_drift_detected", "1 when the last hour's inputs or predictions drifted.",
            labels, registry=reg, multiprocess_mode="livemax",
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        if self.multiprocess:
            MultiProcessCollector(self.registry)

    def _per_request(self, reg: CollectorRegistry) -> None:
        """The per-request metrics as prometheus-client objects (multiprocess mode)."""
        labels = ("model", "version")
        self.requests = Counter(*tallies.REQUESTS, (*labels, "protocol", "status"),
                                registry=reg)
        self.latency = Histogram(*tallies.LATENCY, labels, buckets=LATENCY_BUCKETS,
                                 registry=reg)
        self.queue_time = Histogram(*tallies.QUEUE, labels, buckets=LATENCY_BUCKETS,
                                    registry=reg)
        self.compute_time = Histogram(*tallies.COMPUTE, labels, buckets=LATENCY_BUCKETS,
                                      registry=reg)
        self.batch_size = Histogram(*tallies.BATCH, labels, buckets=BATCH_BUCKETS,
                                    registry=reg)
        self.inflight = Gauge(*tallies.INFLIGHT, ("model",), registry=reg,
                              multiprocess_mode="livesum")

    def deployment(self, model: str, version: str) -> DeploymentTallies | ChildTallies:
        """Where requests answered by (``model``, ``version``) are counted: ``answered``,
        and ``latency``/``queue``/``compute``/``batch`` histograms to ``observe``."""
        key = (model, version)
        found = self._tallies.get(key)
        if found is None:
            if self._collector is not None:
                found = self._collector.deployment(model, version)
            else:
                found = ChildTallies(self.requests, self.latency, self.queue_time,
                                     self.compute_time, self.batch_size, key)
            self._tallies[key] = found
        return found

    def inflight_of(self, model: str) -> Level | Any:
        """``model``'s requests-in-flight gauge (``inc``/``dec``)."""
        if self._collector is not None:
            return self._collector.level(model)
        return self.child(self.inflight, model)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: each ``labels()`` call takes a lock and
        builds a tuple, a measurable share of a small request's cost."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
