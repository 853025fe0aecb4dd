"""Throughput, latency and error series for the dashboard's charts, from fleet counters.

The registry keeps only cumulative counters per server and version (no history), so the
dashboard samples them on a fixed period and differences consecutive samples: each
point is what the whole fleet did in that interval (requests per second, failed share,
p50/p99 of the interval's latency histogram). Every worker samples the same fleet
counters, so any worker answering the page shows the same curves.

Points are kept for ``keep`` seconds (30 minutes by default) in memory: the charts are
a live view, the prediction log and Prometheus are the long-term record.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from modelport.client import Registry
from modelport.registry.traffic import VersionStats, fleet_total

log = logging.getLogger("modelport.dashboard")
DEFAULT_PERIOD = 2.0
DEFAULT_KEEP = 1800.0


@dataclass
class _Series:
    """One endpoint's samples: (unix time, {version: fleet counters})."""

    samples: deque[tuple[float, dict[int, VersionStats]]] = field(default_factory=deque)


def fleet_by_version(registry: Registry, endpoint: str) -> dict[int, VersionStats]:
    """The endpoint's counters now, summed over servers, per version."""
    by_version: dict[int, list[dict[str, Any]]] = {}
    for r in registry.records.traffic(endpoint):
        by_version.setdefault(r.version, []).append(r.stats)
    return {v: fleet_total(reports) for v, reports in by_version.items()}


class TrafficSampler:
    """Samples every endpoint's fleet counters each ``period`` seconds."""

    def __init__(self, registry: Registry, endpoints: Callable[[], Iterable[str]], *,
                 period: float = DEFAULT_PERIOD, keep: float = DEFAULT_KEEP,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry, self.endpoints = registry, endpoints
        self.period, self.keep, self.clock = period, keep, clock
        self._series: dict[str, _Series] = {}

    def sample(self) -> None:
        """Take one sample of every endpoint (blocking: registry reads)."""
        now = self.clock()
        for endpoint in self.endpoints():
            series = self._series.setdefault(endpoint, _Series())
            series.samples.append((now, fleet_by_version(self.registry, endpoint)))
            while series.samples and now - series.samples[0][0] > self.keep:
                series.samples.popleft()

    async def run(self) -> None:
        """Sample until cancelled; a failed sample (registry down) is logged and skipped."""
        while True:
            try:
                await asyncio.to_thread(self.sample)
            except Exception as exc:  # the charts pause; serving must not notice
                log.warning("dashboard traffic sample failed: %s", exc)
            await asyncio.sleep(self.period)

    def series(self, endpoint: str) -> dict[str, Any]:
        """uPlot-ready columns: ``t`` (unix seconds) and per version ``rps``,
        ``error_rate`` (%), ``p50_ms`` and ``p99_ms``, aligned on ``t`` (None: no data)."""
        samples = list(self._series.get(endpoint, _Series()).samples)
        versions = sorted({v for _, by in samples for v in by})
        t: list[float] = []
        out: dict[int, dict[str, list[float | None]]] = {
            v: {"rps": [], "error_rate": [], "p50_ms": [], "p99_ms": []} for v in versions}
        for (t0, before), (t1, after) in itertools.pairwise(samples):
            dt = t1 - t0
            if dt <= 0:
                continue
            t.append(round(t1, 3))
            for v in versions:
                cols = out[v]
                if v not in after:
                    for col in cols.values():
                        col.append(None)
                    continue
                delta = after[v] - before.get(v, VersionStats())
                cols["rps"].append(round(delta.requests / dt, 3))
                busy = delta.requests > 0
                cols["error_rate"].append(round(100 * delta.error_rate, 3) if busy else None)
                cols["p50_ms"].append(delta.latency_quantile(0.5) if busy else None)
                cols["p99_ms"].append(delta.latency_quantile(0.99) if busy else None)
        return {"t": t, "versions": {str(v): cols for v, cols in out.items()}}


__all__ = ["DEFAULT_KEEP", "DEFAULT_PERIOD", "TrafficSampler", "fleet_by_version"]
