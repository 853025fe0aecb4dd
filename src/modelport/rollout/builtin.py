"""The built-in analysis provider: the servers' own per-version counters.

Every server reports cumulative counters per version into the registry; the fleet's
view is their sum, and a step's window is the sum now minus the sum stored as the
rollout's baseline when the step started. So a controller that restarts, or another
one that takes over, judges exactly the same window.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from modelport.registry.entities import Rollout, TrafficReport
from modelport.registry.records import RecordStore
from modelport.registry.traffic import (
    VersionStats,
    fleet_total,
    output_distance,
    shift_p_value,
)
from modelport.rollout.analysis import Measurements, Numbers, Window


def fleet(reports: list[TrafficReport]) -> dict[int, VersionStats]:
    """Each version's counters summed over every server that reported it."""
    by_version: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in reports:
        by_version[r.version].append(r.stats)
    return {v: fleet_total(stats) for v, stats in by_version.items()}


def numbers(stats: VersionStats) -> Numbers:
    """The named measurements of one version's window."""
    return {"requests": float(stats.requests), "errors": float(stats.errors),
            "error_rate": stats.error_rate if stats.requests else None,
            "p99_ms": stats.latency_quantile(0.99),
            "compared": float(stats.shadow_compared), "agreement": stats.agreement}


class BuiltinProvider:
    """Measures a rollout from the traffic counters servers write into the registry."""

    name = "builtin"

    def __init__(self, records: RecordStore, *, min_reference: int = 20) -> None:
        self.records = records
        self.min_reference = min_reference

    def snapshot(self, rollout: Rollout, reports: list[TrafficReport] | None = None,
                 ) -> dict[str, Any]:
        """The fleet's counters of candidate and stable right now."""
        totals = fleet(reports if reports is not None else
                       self.records.traffic(rollout.deployment))
        versions = [v for v in (rollout.candidate, rollout.stable) if v is not None]
        return {"versions": {str(v): totals.get(v, VersionStats()).to_dict()
                             for v in versions}}

    def measure(self, rollout: Rollout, window: Window) -> Measurements:
        """Counters now minus the baseline, for candidate and stable.

        At 100% candidate traffic stable answers nothing in the window; it is then
        judged by everything it answered before the step (its baseline), so error and
        shift checks still have a reference.
        """
        reports = window.reports if window.reports is not None else \
            self.records.traffic(rollout.deployment)
        totals = fleet(reports)
        base = window.baseline.get("versions", {})

        def since(version: int | None) -> tuple[VersionStats, VersionStats]:
            if version is None:
                return VersionStats(), VersionStats()
            before = VersionStats.from_dict(base.get(str(version), {}))
            return totals.get(version, VersionStats()) - before, before

        cand, _ = since(rollout.candidate)
        stable, stable_before = since(rollout.stable)
        reference = "window"
        if stable.requests < self.min_reference and stable_before.requests > stable.requests:
            stable, reference = stable_before, "before the step"
        c = numbers(cand)
        c["shift"] = output_distance(cand.outputs, stable.outputs)
        c["shift_p"] = shift_p_value(cand.outputs, stable.outputs)
        return Measurements(c, numbers(stable), {"stable_reference": reference,
                                                 "window_seconds": round(window.seconds, 3)})


__all__ = ["BuiltinProvider", "fleet", "numbers"]
