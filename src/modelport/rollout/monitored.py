"""An analysis provider from the monitoring store: realized metrics and drift per version.

Candidate and stable are each scored over the step's window (the prediction log joined
with the labels received in it) and compared with their own reference profiles, so
rollout thresholds such as ``Thresholds.metrics={"accuracy": {"min": 0.9}}`` or
``{"drift_share": {"max": 0.3}}`` work. Names: the realized metrics (``accuracy``,
``f1``, ``precision``, ``recall``, ``mse``, ``rmse``, ``mae``, ``r2``, ``mape``),
``labelled`` (rows scored), ``drift_share`` and ``prediction_psi``. A version with no
labels or no profile yet has no value (the check waits).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from modelport.client import Registry
from modelport.monitoring.evaluate import version_drift
from modelport.monitoring.realized import realized_metrics
from modelport.registry.entities import Rollout, TrafficReport
from modelport.rollout.analysis import Measurements, Numbers, Window


class MonitoringProvider:
    """Label and drift metrics of candidate and stable over a step's window."""

    name = "monitoring"

    def __init__(self, registry: Registry, root: str | Path, *, drift: bool = True) -> None:
        self.registry, self.root, self.drift = registry, Path(root), drift

    def snapshot(self, rollout: Rollout, reports: list[TrafficReport] | None = None,
                 ) -> dict[str, Any]:
        """Nothing to store: the window's start time is enough to read the log."""
        return {}

    def measure(self, rollout: Rollout, window: Window) -> Measurements:
        """Realized metrics and drift of both versions in [window.start, window.end)."""
        span = window.end - window.start
        if span <= timedelta(0):
            return Measurements()
        realized = realized_metrics(self.root, rollout.deployment, span, window.end)
        by_version = {v.version: v for v in realized.versions}
        out = Measurements(notes={"monitoring": {"labels": realized.labels,
                                                 "unknown": realized.unknown}})
        for side, version in (("candidate", rollout.candidate), ("stable", rollout.stable)):
            numbers: Numbers = {}
            scored = by_version.get(version) if version is not None else None
            if scored is not None:
                numbers.update(scored.metrics)
                numbers["labelled"] = float(scored.labelled)
            if self.drift and version is not None:
                report, _ = version_drift(self.registry, self.root, rollout.deployment,
                                          rollout.model_name, version, window.start,
                                          window.end)
                if report is not None:
                    numbers["drift_share"] = report.summary.share
                    numbers["prediction_psi"] = (report.predictions[0].psi
                                                 if report.predictions else None)
            setattr(out, side, numbers)
        return out


__all__ = ["MonitoringProvider"]
