"""One look at a running step: measure with the rollout's provider, then judge.

The controller acts on this; ``rollout status`` shows it. Both compute it the same
way from the registry alone, so what a person sees is what the controller decides on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelport.client import Registry
from modelport.errors import InvalidInputError
from modelport.registry.entities import Rollout, TrafficReport
from modelport.rollout.analysis import (
    AnalysisProvider,
    CombinedProvider,
    Measurements,
    Thresholds,
    Verdict,
    Window,
    judge,
)
from modelport.rollout.builtin import BuiltinProvider
from modelport.rollout.strategies import mode_at

PROVIDERS = ("builtin", "prometheus")


@dataclass(frozen=True)
class Assessment:
    """A step's window measured and judged, at ``at``."""

    at: datetime
    elapsed: float
    step_done: bool
    measurements: Measurements
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        """The JSON form recorded in events and shown by ``rollout status --json``."""
        return {"at": self.at.isoformat(), "elapsed_seconds": round(self.elapsed, 3),
                "step_done": self.step_done, "measurements": self.measurements.to_dict(),
                "verdict": self.verdict.to_dict()}


def provider_for(registry: Registry, rollout: Rollout,
                 extra: Sequence[AnalysisProvider] = ()) -> AnalysisProvider:
    """The provider a rollout's ``analysis`` names, plus any extra ones (monitoring)."""
    analysis = rollout.analysis
    kind = analysis.get("provider", "builtin")
    main: AnalysisProvider
    if kind == "builtin":
        main = BuiltinProvider(registry.records,
                               min_reference=Thresholds.from_dict(analysis).min_requests)
    elif kind == "prometheus":
        from modelport.rollout.prometheus import PrometheusProvider

        url = analysis.get("prometheus_url")
        if not url:
            raise InvalidInputError("--analysis prometheus needs --prometheus-url")
        main = PrometheusProvider(str(url), queries=analysis.get("queries") or None)
    else:
        raise InvalidInputError(f"unknown analysis provider {kind!r}; use one of "
                                f"{', '.join(PROVIDERS)}")
    return CombinedProvider([main, *extra]) if extra else main


def assess(rollout: Rollout, provider: AnalysisProvider, now: datetime,
           reports: list[TrafficReport] | None = None) -> Assessment:
    """Measure the current step's window (its start to ``now``) and judge it."""
    if rollout.step_started_at is None:
        raise InvalidInputError(f"rollout #{rollout.id} has not started a step yet")
    window = Window(rollout.step_started_at, now, rollout.baseline, reports)
    measured = provider.measure(rollout, window)
    served = measured.candidate.get("requests") or 0.0
    done = ((rollout.step_seconds is None or window.seconds >= rollout.step_seconds)
            and (rollout.step_requests is None or served >= rollout.step_requests))
    verdict = judge(measured, Thresholds.from_dict(rollout.analysis),
                    mode_at(rollout.strategy, rollout.step_index), step_done=done)
    return Assessment(now, window.seconds, done, measured, verdict)


__all__ = ["PROVIDERS", "Assessment", "assess", "provider_for"]
