"""Every Prometheus metric the server exports, named once.

Metrics live in a ``CollectorRegistry`` made per app (no module-level state). With
``--workers N`` the processes share ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``
aggregates them with prometheus-client's multiprocess collector.
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
        self.requests = Counter(
            "modelport_requests", "Inference requests by outcome.",
            (*labels, "protocol", "status"), registry=reg,
        )
        self.latency = Histogram(
            "modelport_request_duration_seconds", "Time from request read to response.",
            labels, buckets=LATENCY_BUCKETS, registry=reg,
        )
        self.queue_time = Histogram(
            "modelport_queue_duration_seconds", "Time a request waited for its batch.",
            labels, buckets=LATENCY_BUCKETS, registry=reg,
        )
        self.compute_time = Histogram(
            "modelport_compute_duration_seconds", "Model execution time of a request's batch.",
            labels, buckets=LATENCY_BUCKETS, registry=reg,
        )
        self.batch_size = Histogram(
            "modelport_batch_size_rows", "Rows per model call.", labels,
            buckets=BATCH_BUCKETS, registry=reg,
        )
        self.inflight = Gauge(
            "modelport_inflight_requests", "Requests being processed.", ("model",),
            registry=reg, multiprocess_mode="livesum",
        )
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
