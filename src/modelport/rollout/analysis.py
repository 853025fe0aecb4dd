"""Analysis: judge a candidate against stable over a step's window.

Providers measure (``AnalysisProvider``: named numbers for candidate and stable);
``judge`` decides. Keeping them apart lets a later stage add a metric (``accuracy``
once labels arrive) by adding a provider and a threshold, without touching the verdict.

Measurement names every provider uses when it can: ``requests``, ``errors``,
``error_rate``, ``p99_ms``; the candidate's ``shift`` (distance of its outputs from
stable's, 0-1) and, in shadow mode, ``compared`` and ``agreement``. Any other name is an
extra metric, judged by the rules in ``Thresholds.metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from modelport.errors import InvalidInputError
from modelport.registry.entities import Mode, Rollout, TrafficReport

Numbers = dict[str, float | None]
RULES = ("min", "max", "max_decrease", "max_increase")


@dataclass(frozen=True)
class Thresholds:
    """The limits a candidate must keep; stored with the rollout (``rollout.analysis``)."""

    max_error_rate: float = 0.05  # absolute cap on the candidate's error rate
    max_error_increase: float = 0.02  # candidate error rate minus stable's
    max_p99_ms: float | None = None
    max_p99_ratio: float | None = None  # candidate p99 / stable p99
    min_agreement: float = 0.9  # shadow: share of rows answered as stable did
    max_shift: float = 0.25  # canary/bluegreen: Jensen-Shannon distance of outputs
    shift_significance: float = 0.001  # a shift must also have a p-value below this
    min_requests: int = 20  # samples needed before a step can pass or a ratio can fail
    fail_fast_errors: int = 5  # this many errors over the cap fail at once
    ready_timeout: float = 120.0  # seconds for every server to load the candidate
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("max_error_rate", "max_error_increase", "min_agreement", "max_shift",
                     "shift_significance"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("max_p99_ms", "max_p99_ratio", "ready_timeout"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InvalidInputError(f"{_flag(name)} must be a positive number, got {value}")
        for name in ("min_requests", "fail_fast_errors"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{_flag(name)} must be at least 1")
        for metric, rules in self.metrics.items():
            unknown = set(rules) - set(RULES)
            if unknown or not rules:
                raise InvalidInputError(f"metric {metric!r}: rules must be among {RULES}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        """Read thresholds back from a rollout's ``analysis`` (unknown keys ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored with the rollout."""
        return asdict(self)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidInputError(f"{_flag(name)} must be within {low:g}-{high:g}, got {value}")


@dataclass(frozen=True)
class Window:
    """The span a step is judged over: from its start (with the counters stored then) to
    now. ``reports`` carries traffic counters already read this tick, if any."""

    start: datetime
    end: datetime
    baseline: dict[str, Any]
    reports: list[TrafficReport] | None = None

    @property
    def seconds(self) -> float:
        """Length of the window in seconds (never negative)."""
        return max(0.0, (self.end - self.start).total_seconds())


@dataclass
class Measurements:
    """Named numbers for candidate and stable over one window; ``None`` means no data."""

    candidate: Numbers = field(default_factory=dict)
    stable: Numbers = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def merged(self, other: Measurements) -> Measurements:
        """These measurements plus another provider's (the other's names win)."""
        return Measurements({**self.candidate, **other.candidate},
                            {**self.stable, **other.stable}, {**self.notes, **other.notes})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form recorded in events."""
        return {"candidate": self.candidate, "stable": self.stable, "notes": self.notes}


class AnalysisProvider(Protocol):
    """Measures candidate and stable of a rollout over a window."""

    name: str

    def snapshot(self, rollout: Rollout, reports: list[TrafficReport] | None = None,
                 ) -> dict[str, Any]:
        """What to store as the baseline when a step starts (may be empty)."""
        ...

    def measure(self, rollout: Rollout, window: Window) -> Measurements:
        """Candidate and stable numbers over ``window``."""
        ...


class CombinedProvider:
    """Several providers as one: snapshots side by side, measurements merged."""

    name = "combined"

    def __init__(self, providers: Sequence[AnalysisProvider]) -> None:
        self.providers = list(providers)

    def snapshot(self, rollout: Rollout, reports: list[TrafficReport] | None = None,
                 ) -> dict[str, Any]:
        """Each provider's snapshot under its name."""
        return {p.name: p.snapshot(rollout, reports) for p in self.providers}

    def measure(self, rollout: Rollout, window: Window) -> Measurements:
        """All providers' measurements, each given its own part of the baseline."""
        out = Measurements()
        for p in self.providers:
            part = Window(window.start, window.end, window.baseline.get(p.name, {}),
                          window.reports)
            out = out.merged(p.measure(rollout, part))
        return out


@dataclass(frozen=True)
class Check:
    """One rule applied: ``passed`` is None while there is not enough data to judge."""

    name: str
    value: float | None
    limit: float
    passed: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form recorded in events."""
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """``fail`` (roll back now), ``pass`` (step done and healthy) or ``wait``."""

    outcome: str
    reason: str
    checks: list[Check]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form recorded in events."""
        return {"outcome": self.outcome, "reason": self.reason,
                "checks": [c.to_dict() for c in self.checks]}


def judge(m: Measurements, t: Thresholds, mode: Mode | None, *, step_done: bool) -> Verdict:
    """The verdict on one window. Any failed check fails at once (that is what makes a
    rollback fast); a step passes only when it is done, every check that can be judged
    passed, and the candidate served at least ``min_requests``."""
    c, s = m.candidate, m.stable
    n = c.get("requests") or 0.0
    errors = c.get("errors") or 0.0
    rate = c.get("error_rate")
    checks: list[Check] = []
    if rate is not None and errors >= t.fail_fast_errors and rate > t.max_error_rate:
        checks.append(Check("error_rate", rate, t.max_error_rate, False,
                            f"candidate error rate {rate:.1%} over {t.max_error_rate:.1%} "
                            f"({errors:g} errors in {n:g} requests)"))
        return Verdict("fail", checks[0].detail, checks)
    enough, sample = n >= t.min_requests, n
    stable_enough = (s.get("requests") or 0.0) >= t.min_requests
    checks.append(_upper("error_rate", rate, t.max_error_rate, enough, "candidate error rate",
                         pct=True))
    if rate is not None and s.get("error_rate") is not None:
        diff = rate - float(s["error_rate"])  # type: ignore[arg-type]
        checks.append(_upper("error_increase", diff, t.max_error_increase,
                             enough and stable_enough, "error rate above stable's", pct=True))
    p99, sp99 = c.get("p99_ms"), s.get("p99_ms")
    if t.max_p99_ms is not None:
        checks.append(_upper("p99_ms", p99, t.max_p99_ms, enough, "candidate p99 (ms)"))
    if t.max_p99_ratio is not None:
        ratio = p99 / sp99 if p99 is not None and sp99 else None
        checks.append(_upper("p99_ratio", ratio, t.max_p99_ratio, enough and stable_enough,
                             "candidate p99 / stable p99"))
    if mode is Mode.SHADOW:
        compared = c.get("compared")
        sample = compared if compared is not None else n
        enough = sample >= t.min_requests
        checks.append(_lower("agreement", c.get("agreement"), t.min_agreement, enough,
                             "agreement with stable", pct=True))
    else:
        checks.append(_shift(c.get("shift"), c.get("shift_p"), t, enough and stable_enough))
    checks.extend(_extra(m, t))
    failed = [ch for ch in checks if ch.passed is False]
    if failed:
        return Verdict("fail", "; ".join(ch.detail for ch in failed), checks)
    if not step_done:
        return Verdict("wait", "step in progress", checks)
    held = [ch for ch in checks if ch.name == "shift" and ch.passed is None
            and ch.value is not None and ch.value > ch.limit]
    if held:
        return Verdict("wait", f"step held: {held[0].detail}", checks)
    if not enough:
        return Verdict("wait", f"step held until {t.min_requests} candidate samples "
                               f"(have {int(sample)})", checks)
    return Verdict("pass", "every check passed", checks)


def _shift(value: float | None, p: float | None, t: Thresholds, judged: bool) -> Check:
    """Output shift fails only when over the limit and unlikely to be chance (p below
    ``shift_significance``): small windows of one distribution often differ by 0.2-0.3.
    Over the limit but not yet significant holds the step instead of passing it."""
    check = _upper("shift", value, t.max_shift, judged, "output shift from stable")
    if check.passed is False and p is not None and p >= t.shift_significance:
        return Check("shift", value, t.max_shift, None,
                     f"output shift from stable {value:.4g} over {t.max_shift:.4g} but not "
                     f"significant yet (p={p:.2g})")
    return check


def _upper(name: str, value: float | None, limit: float, judged: bool, what: str, *,
           pct: bool = False) -> Check:
    if value is None or not judged:
        return Check(name, value, limit, None, f"{what}: not enough data yet")
    shown = (lambda x: f"{x:.1%}") if pct else (lambda x: f"{x:.4g}")
    ok = value <= limit
    return Check(name, value, limit, ok,
                 f"{what} {shown(value)} {'within' if ok else 'over'} {shown(limit)}")


def _lower(name: str, value: float | None, limit: float, judged: bool, what: str, *,
           pct: bool = False) -> Check:
    if value is None or not judged:
        return Check(name, value, limit, None, f"{what}: not enough data yet")
    shown = (lambda x: f"{x:.1%}") if pct else (lambda x: f"{x:.4g}")
    ok = value >= limit
    return Check(name, value, limit, ok,
                 f"{what} {shown(value)} {'at or above' if ok else 'below'} {shown(limit)}")


def _extra(m: Measurements, t: Thresholds) -> list[Check]:
    checks = []
    for name, rules in sorted(t.metrics.items()):
        value, ref = m.candidate.get(name), m.stable.get(name)
        for rule, limit in sorted(rules.items()):
            if rule == "min":
                checks.append(_lower(name, value, limit, True, f"candidate {name}"))
            elif rule == "max":
                checks.append(_upper(name, value, limit, True, f"candidate {name}"))
            else:
                diff = None if value is None or ref is None else (
                    ref - value if rule == "max_decrease" else value - ref)
                checks.append(_upper(f"{name}_{rule.removeprefix('max_')}", diff, limit, True,
                                     f"{name} {rule.removeprefix('max_')} against stable"))
    return checks


__all__ = ["AnalysisProvider", "Check", "CombinedProvider", "Measurements", "Thresholds",
           "Verdict", "Window", "judge"]
