"""The numbers alert rules compare: one value per rule, from the existing sources.

- realized metrics (``accuracy``, ``mse``, ...): the prediction log scored against
  labels (``realized.realized_metrics``), for the endpoint's stable version (the
  version with most predictions when the endpoint has no deployment);
- drift (``psi(f)``, ``drift_share``, ...): the stable version's logged inputs and
  predictions in the window compared with its reference profile (``drift.compare``);
- traffic (``error_rate``, ``p99_latency_ms``, ...): the registry's cumulative traffic
  counters, summed over servers and versions. A window is "counters now minus
  counters at its start"; the counters at its start are the snapshots taken on
  earlier ticks (``CounterHistory``, kept in the registry for two days, so a restarted
  evaluator, or another one taking over, goes on with the same windows). Until
  snapshots cover a whole window, the oldest one is used (the value covers less than
  the window, and says so); a first evaluation has no earlier snapshot and counts
  everything the servers counted since they started. Counters (not the prediction
  log) are used because they count every request, failed ones included, whatever the
  sampling.

A value of ``None`` means no data (no labels yet, an empty window): it neither fires
nor resolves an alert.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from modelport.client import Registry
from modelport.monitoring.rules import DRIFT, FEATURE_DRIFT, REALIZED, TRAFFIC, Rule
from modelport.registry.traffic import VersionStats, fleet_total

log = logging.getLogger("modelport.monitoring")
MAX_SNAPSHOT_AGE = timedelta(days=2)


@dataclass(frozen=True)
class Value:
    """A rule's value now (None: no data) and a note on how it was measured."""

    value: float | None
    note: str = ""


class CounterHistory:
    """Snapshots of each endpoint's fleet counters, to difference windows against; kept
    in the registry (``AlertStore.record_counters``) for ``MAX_SNAPSHOT_AGE``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def add(self, endpoint: str, now: datetime, total: VersionStats) -> None:
        """Remember the counters at ``now`` (snapshots older than two days are forgotten)."""
        # Alerts never read the output histogram; up to 256 keys a row, every tick for
        # two days, it would be most of the table.
        kept = replace(total, outputs={})
        self.registry.alerts.record_counters(endpoint, now, kept.to_dict(),
                                             keep=MAX_SNAPSHOT_AGE)

    def at(self, endpoint: str, start: datetime) -> tuple[datetime, VersionStats] | None:
        """The newest snapshot taken at or before ``start``, else the oldest one."""
        found = self.registry.alerts.counters_at(endpoint, start)
        if found is None:
            return None
        return found[0], VersionStats.from_dict(found[1])


class Sources:
    """Computes rule values for one tick, each source read once per endpoint and window."""

    def __init__(self, registry: Registry, root: str | Path, history: CounterHistory,
                 now: datetime) -> None:
        self.registry, self.root, self.history, self.now = registry, Path(root), history, now
        self._cache: dict[tuple[str, str, timedelta], Any] = {}
        self._totals: dict[str, VersionStats] = {}

    def value(self, rule: Rule) -> Value:
        """The value of ``rule``'s metric over its window (never raises for no data)."""
        metric = rule.condition.metric
        if metric in TRAFFIC:
            return self._traffic(rule)
        if metric in REALIZED:
            return self._realized(rule)
        if metric in FEATURE_DRIFT or metric in DRIFT:
            return self._drift(rule)
        raise AssertionError(f"metric {metric!r} has no source")  # rules.py forbids it

    def stable_version(self, endpoint: str) -> int | None:
        """The endpoint's stable version from its deployment, if it has one."""
        dep = self.registry.deployments.find(endpoint)
        return None if dep is None else dep.stable

    # -- traffic --------------------------------------------------------------------------

    def total(self, endpoint: str) -> VersionStats:
        """The fleet's counters for every version of ``endpoint`` now (read once a tick)."""
        if endpoint not in self._totals:
            reports = self.registry.records.traffic(endpoint)
            self._totals[endpoint] = fleet_total([r.stats for r in reports])
        return self._totals[endpoint]

    def record_snapshots(self) -> None:
        """Keep this tick's counters for later windows."""
        for endpoint, total in self._totals.items():
            self.history.add(endpoint, self.now, total)

    def _traffic(self, rule: Rule) -> Value:
        now_total = self.total(rule.endpoint)
        start = self.now - rule.condition.window
        snap = self.history.at(rule.endpoint, start)
        if snap is None:
            stats, note = now_total, "counters since the servers started"
        else:
            stats = now_total - snap[1]
            covered = self.now - snap[0]
            note = "" if snap[0] <= start else f"over the last {_span(covered)} only"
        metric = rule.condition.metric
        if stats.requests <= 0:
            return Value(None, "no requests in the window")
        if metric == "requests":
            return Value(float(stats.requests), note)
        if metric == "errors":
            return Value(float(stats.errors), note)
        if metric == "error_rate":
            return Value(stats.error_rate, note)
        q = int(metric.removeprefix("p").removesuffix("_latency_ms")) / 100.0
        return Value(stats.latency_quantile(q), note)

    # -- realized metrics -----------------------------------------------------------------

    def _realized(self, rule: Rule) -> Value:
        from modelport.monitoring.realized import realized_metrics

        key = ("realized", rule.endpoint, rule.condition.window)
        if key not in self._cache:
            self._cache[key] = realized_metrics(self.root, rule.endpoint,
                                                rule.condition.window, self.now)
        result = self._cache[key]
        if not result.versions:
            return Value(None, "no predictions logged in the window")
        stable = self.stable_version(rule.endpoint)
        chosen = next((v for v in result.versions if v.version == stable), None) or max(
            result.versions, key=lambda v: v.predictions)
        value = chosen.metrics.get(rule.condition.metric)
        note = f"version {chosen.version}, {chosen.labelled} labelled"
        return Value(value, note if value is not None else f"{note}: no "
                     f"{rule.condition.metric} yet")

    # -- drift ----------------------------------------------------------------------------

    def drift_report(self, endpoint: str, window: timedelta) -> tuple[Any, str]:
        """The drift report of the stable version's window (None and why, if none)."""
        key = ("drift", endpoint, window)
        if key not in self._cache:
            self._cache[key] = self._compute_drift(endpoint, window)
        return self._cache[key]  # type: ignore[no-any-return]

    def _compute_drift(self, endpoint: str, window: timedelta) -> tuple[Any, str]:
        dep = self.registry.deployments.find(endpoint)
        if dep is None or dep.stable is None:
            return None, f"endpoint {endpoint!r} has no deployment with a stable version"
        return version_drift(self.registry, self.root, endpoint, dep.model_name, dep.stable,
                             self.now - window, self.now)

    def _drift(self, rule: Rule) -> Value:
        report, why = self.drift_report(rule.endpoint, rule.condition.window)
        if report is None:
            return Value(None, why)
        metric, feature = rule.condition.metric, rule.condition.feature
        if metric == "drift_share":
            return Value(report.summary.share, f"{report.summary.drifted} of "
                         f"{report.summary.tested} features drifted")
        if metric == "drifted_features":
            return Value(float(report.summary.drifted))
        if metric == "prediction_psi":
            psi = report.predictions[0].psi if report.predictions else None
            return Value(psi, "" if psi is not None else "no prediction drift measured")
        found = report.feature(feature)
        if found is None:
            return Value(None, f"feature {feature!r} is not in the reference profile")
        attr = {"psi": "psi", "jensenshannon": "jensenshannon",
                "drift_statistic": "statistic", "drift_p_value": "p_value",
                "missing_rate": "current_missing_rate"}[metric]
        value = getattr(found, attr)
        return Value(None if value is None else float(value),
                     "" if value is not None else f"{feature}: {found.status}")


def version_drift(registry: Registry, root: str | Path, endpoint: str, model: str,
                  version: int, since: datetime, until: datetime) -> tuple[Any, str]:
    """Drift of one version's logged inputs (and predictions) in [since, until) against
    its reference profile: the report, or None and why there is none."""
    from modelport.monitoring.drift import compare
    from modelport.monitoring.query import read_predictions

    profile = registry.reference_profile(f"{model}/{version}")
    if profile is None:
        return None, f"{model}/{version} has no reference profile"
    table = read_predictions(root, endpoint, since, until, version=version)
    if table.num_rows == 0 or "inputs" not in table.column_names:
        return None, "no predictions logged in the window"
    features = logged_inputs(table)
    preds = table.column("prediction").to_numpy(zero_copy_only=False) \
        if "prediction" in table.column_names else None
    try:
        return compare(profile, features, predictions=preds), ""
    except Exception as exc:  # predictions the profile cannot take: inputs alone
        log.warning("drift of %s predictions skipped: %s", endpoint, exc)
        return compare(profile, features), ""


def logged_inputs(table: Any) -> Any:
    """The ``inputs`` struct column of logged predictions as a DataFrame of features."""
    import pandas as pd

    inputs = table.column("inputs").combine_chunks()
    names = [inputs.type.field(i).name for i in range(inputs.type.num_fields)]
    return pd.DataFrame({n: inputs.field(i).to_numpy(zero_copy_only=False)
                         for i, n in enumerate(names)})


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds // 60}m" if seconds >= 60 else f"{seconds}s"


__all__ = ["CounterHistory", "Sources", "Value", "logged_inputs", "version_drift"]
