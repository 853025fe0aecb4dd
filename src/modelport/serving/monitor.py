"""The server's monitoring: its prediction log, its label log, and the gauges they feed.

``Monitoring`` belongs to one server process. The repository offers every answered
request to ``predictions`` (``PredictionLog.offer``: references only, never blocks);
the feedback route hands parsed labels to ``labels``. Two background loops export what
they see on ``/metrics``:

* every ``sync_interval`` seconds (and at each scrape), the prediction log's counters,
  as deltas on Prometheus counters, so ``--workers N`` aggregates them like any other;
* every ``interval`` seconds, in a thread, realized metrics (the last ``window`` of
  predictions joined to their labels) and drift of the serving stable version against
  its reference profile (the last ``max_rows`` rows of the window). Any failure is
  logged and tried again next period.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelport.monitoring.drift import DriftReport, compare
from modelport.monitoring.labels import LABEL_COUNTERS, LabelLog
from modelport.monitoring.layout import cleanup
from modelport.monitoring.predlog import COUNTERS, PredictionLog
from modelport.monitoring.profile import ReferenceProfile
from modelport.monitoring.query import read_predictions
from modelport.monitoring.realized import RealizedMetrics, realized_metrics
from modelport.serving.metrics import ServerMetrics

log = logging.getLogger("modelport.serving")
DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_MAX_ROWS = 100_000
CLEANUP_SECONDS = 3600.0  # how often retention is applied
_UNSAFE = re.compile(r"[^A-Za-z0-9._]")


def worker_id(server_id: str) -> str:
    """A prediction-log worker id (A-Z a-z 0-9 . _, at most 64) from a traffic server id."""
    safe = _UNSAFE.sub("_", server_id).lstrip("._") or "worker"
    return safe[-64:].lstrip("._") or "worker"


@dataclass(frozen=True)
class Watched:
    """What one gauge update looks at for one endpoint: its stable version and profile."""

    endpoint: str
    version: int | None
    profile: ReferenceProfile | None


@dataclass
class Observation:
    """What one gauge update found for one endpoint (None: not computed)."""

    endpoint: str
    version: int | None
    realized: RealizedMetrics | None = None
    drift: DriftReport | None = None


class Monitoring:
    """One process's prediction log, label log and monitoring gauges."""

    def __init__(self, predictions: PredictionLog, labels: LabelLog | None = None, *,
                 interval: float = 60.0, sync_interval: float = 5.0,
                 window: timedelta = DEFAULT_WINDOW, max_rows: int = DEFAULT_MAX_ROWS,
                 retention_days: int = 0) -> None:
        self.predictions = predictions
        self.labels = labels
        self.root = Path(predictions.root)
        self.interval = interval
        self.sync_interval = sync_interval
        self.window = window
        self.max_rows = max_rows
        self.retention_days = retention_days  # 0: keep everything
        self.failures = 0  # gauge updates that failed (logged, retried next period)
        self._exported: dict[tuple[str, str, str], int] = {}  # (log, endpoint, outcome)

    # -- prediction log counters ----------------------------------------------------------

    def sync(self, metrics: ServerMetrics) -> None:
        """Bring the exported counters up to the logs' (adds the difference)."""
        self._sync("predictions", metrics.predlog_rows, self.predictions.stats(), COUNTERS,
                   metrics)
        if self.labels is not None:
            self._sync("labels", metrics.label_log_rows, self.labels.stats(), LABEL_COUNTERS,
                       metrics)
        metrics.predlog_queued.set(self.predictions.queued_rows)

    def _sync(self, log_name: str, counter: Any, stats: dict[str, dict[str, int]],
              outcomes: tuple[str, ...], metrics: ServerMetrics) -> None:
        for endpoint, counts in stats.items():
            for outcome in outcomes:
                key = (log_name, endpoint, outcome)
                delta = counts[outcome] - self._exported.get(key, 0)
                if delta > 0:
                    metrics.child(counter, endpoint, outcome).inc(delta)
                    self._exported[key] = counts[outcome]

    # -- realized metrics and drift --------------------------------------------------------

    def observe(self, watched: list[Watched], now: datetime | None = None) -> list[Observation]:
        """Realized metrics and drift of each endpoint (blocking: run it in a thread).
        A failing endpoint is logged and skipped; the others are still computed."""
        at = now or datetime.now(UTC)
        found = []
        for w in watched:
            seen = Observation(w.endpoint, w.version)
            try:
                seen.realized = realized_metrics(self.root, w.endpoint, self.window, now=at,
                                                 labelled_only=True)
                if w.version is not None and w.profile is not None:
                    seen.drift = self._drift(w, at)
            except Exception as exc:
                self.failures += 1
                log.warning("monitoring %s failed: %s; retrying in %gs", w.endpoint, exc,
                            self.interval)
            found.append(seen)
        return found

    def _drift(self, w: Watched, at: datetime) -> DriftReport | None:
        table = read_predictions(self.root, w.endpoint, at - self.window, at, w.version)
        if table.num_rows == 0 or "inputs" not in table.column_names:
            return None
        table = table.slice(max(0, table.num_rows - self.max_rows))  # the newest rows
        window = table.column("inputs").combine_chunks().flatten()
        names = table.schema.field("inputs").type
        columns = {names.field(i).name: arr.to_numpy(zero_copy_only=False)
                   for i, arr in enumerate(window)}
        predictions = None
        if "prediction" in table.column_names:
            predictions = table.column("prediction").to_numpy()
        assert w.profile is not None
        return compare(w.profile, columns, predictions=predictions)

    @staticmethod
    def export(metrics: ServerMetrics, observed: list[Observation]) -> None:
        """Set the realized-metric and drift gauges (endpoints observed are replaced)."""
        metrics.realized.clear()
        metrics.realized_labels.clear()
        metrics.drift_score.clear()
        metrics.drift_detected.clear()
        for seen in observed:
            if seen.realized is not None:
                r = seen.realized
                for kind, count in (("received", r.labels), ("unknown", r.unknown),
                                    ("duplicate", r.duplicates)):
                    metrics.realized_labels.labels(seen.endpoint, kind).set(count)
                for vm in seen.realized.versions:
                    for name, value in vm.metrics.items():
                        if value is not None:
                            metrics.realized.labels(seen.endpoint, str(vm.version),
                                                    name).set(value)
            report = seen.drift
            if report is None or report.status != "ok":
                continue
            version = str(seen.version)
            for f in (*report.features, *report.predictions):
                if f.statistic is not None:
                    metrics.drift_score.labels(seen.endpoint, version, f.feature).set(
                        f.statistic)
            drifted = report.summary.dataset_drift or bool(report.prediction_drift)
            metrics.drift_detected.labels(seen.endpoint, version).set(1 if drifted else 0)

    async def run(self, metrics: ServerMetrics, watched: Any) -> None:
        """Forever: sync counters often, update the gauges every ``interval`` seconds.
        ``watched()`` gives the endpoints to observe (read on the event loop)."""
        next_gauges = time.monotonic() + min(self.interval, 5.0)  # a first look soon
        next_cleanup = time.monotonic()
        while True:
            await asyncio.sleep(min(self.sync_interval, self.interval))
            try:
                self.sync(metrics)
                if self.retention_days and time.monotonic() >= next_cleanup:
                    next_cleanup = time.monotonic() + CLEANUP_SECONDS
                    await asyncio.to_thread(self.cleanup)
                if time.monotonic() >= next_gauges:
                    next_gauges = time.monotonic() + self.interval
                    observed = await asyncio.to_thread(self.observe, watched())
                    self.export(metrics, observed)
            except Exception:
                self.failures += 1
                log.exception("updating the monitoring metrics failed; retrying")

    def cleanup(self, now: datetime | None = None) -> list[Path]:
        """Remove day partitions older than ``retention_days`` (blocking). Several
        workers may race here: a partition another one removed first is not an error."""
        try:
            return cleanup(self.root, self.retention_days, now=now)
        except FileNotFoundError:
            return []

    def close(self, timeout: float = 30.0) -> None:
        """Write what is buffered and stop the writer threads (blocking)."""
        self.predictions.close(timeout)
        if self.labels is not None:
            self.labels.close(timeout)


__all__ = ["Monitoring", "Observation", "Watched", "worker_id"]
