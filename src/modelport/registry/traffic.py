"""The traffic counters servers report per version and controllers judge rollouts by.

Counters are cumulative, like Prometheus counters: each server process reports its
own totals under its own id, a fleet's view is their sum, and a window is the
difference of two sums. So a server that restarts (a new id, counting from zero) or a
controller that restarts (it kept the window's starting sum in the registry) sees the
same window.

Outputs are kept as a sparse histogram, so that shift between two versions can be
measured over any window: class labels count by value (``c:setosa``), numbers by a
bin of ``sign(x)·log1p(|x|)`` 0.05 wide (``b:12``); past ``MAX_OUTPUT_KEYS`` keys, the
rest count under ``other``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Upper bounds of the latency buckets, in milliseconds (the last one is +Inf).
LATENCY_BOUNDS_MS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500,
                     750, 1000, 2000, 5000, 10000, math.inf)
MAX_OUTPUT_KEYS = 256
BIN_WIDTH = 0.05


@dataclass
class VersionStats:
    """Cumulative counters of one version on one server (or summed over many)."""

    requests: int = 0
    errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BOUNDS_MS))
    outputs: dict[str, int] = field(default_factory=dict)
    shadow_compared: int = 0
    shadow_agreed: int = 0
    state: str = "loading"  # loading | ready | failed (only meaningful per server)
    error: str = ""

    # -- recording ----------------------------------------------------------------------

    def record(self, seconds: float, ok: bool) -> None:
        """One request answered (``ok``) or failed, after ``seconds``."""
        self.requests += 1
        if not ok:
            self.errors += 1
        ms = seconds * 1000.0
        for i, bound in enumerate(LATENCY_BOUNDS_MS):
            if ms <= bound:
                self.latency[i] += 1
                break

    def record_outputs(self, values: np.ndarray[Any, Any]) -> None:
        """Count a request's predictions (first output, first column) by value or bin."""
        flat = values.reshape(len(values), -1)[:, 0] if values.ndim > 1 else values
        for key in _keys(flat):
            if key in self.outputs or len(self.outputs) < MAX_OUTPUT_KEYS:
                self.outputs[key] = self.outputs.get(key, 0) + 1
            else:
                self.outputs["other"] = self.outputs.get("other", 0) + 1

    def record_shadow(self, compared: int, agreed: int) -> None:
        """Rows of a shadow copy compared with the stable answer, and how many agreed."""
        self.shadow_compared += compared
        self.shadow_agreed += agreed

    # -- arithmetic ---------------------------------------------------------------------

    def __add__(self, other: VersionStats) -> VersionStats:
        return VersionStats(
            self.requests + other.requests, self.errors + other.errors,
            [a + b for a, b in zip(self.latency, other.latency, strict=True)],
            _merge(self.outputs, other.outputs, 1),
            self.shadow_compared + other.shadow_compared,
            self.shadow_agreed + other.shadow_agreed,
        )

    def __sub__(self, earlier: VersionStats) -> VersionStats:
        """What happened since ``earlier`` (counters never go below zero)."""
        return VersionStats(
            max(0, self.requests - earlier.requests), max(0, self.errors - earlier.errors),
            [max(0, a - b) for a, b in zip(self.latency, earlier.latency, strict=True)],
            {k: v for k, v in _merge(self.outputs, earlier.outputs, -1).items() if v > 0},
            max(0, self.shadow_compared - earlier.shadow_compared),
            max(0, self.shadow_agreed - earlier.shadow_agreed),
        )

    # -- reading ------------------------------------------------------------------------

    @property
    def error_rate(self) -> float:
        """Failed share of requests (0 when there were none)."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def agreement(self) -> float | None:
        """Share of shadow rows that agreed with stable, or None if none were compared."""
        return self.shadow_agreed / self.shadow_compared if self.shadow_compared else None

    def latency_quantile(self, q: float) -> float | None:
        """The ``q`` quantile of latency in ms (bucket upper bound), None without data."""
        total = sum(self.latency)
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for count, bound in zip(self.latency, LATENCY_BOUNDS_MS, strict=True):
            seen += count
            if seen >= rank and count:
                return bound if math.isfinite(bound) else LATENCY_BOUNDS_MS[-2] * 2
        return LATENCY_BOUNDS_MS[-2] * 2

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the registry."""
        return {"requests": self.requests, "errors": self.errors, "latency": self.latency,
                "outputs": self.outputs, "shadow_compared": self.shadow_compared,
                "shadow_agreed": self.shadow_agreed, "state": self.state,
                "error": self.error}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionStats:
        """Read the JSON form back (unknown or missing fields tolerated)."""
        latency = [int(x) for x in data.get("latency") or []]
        if len(latency) != len(LATENCY_BOUNDS_MS):
            latency = [0] * len(LATENCY_BOUNDS_MS)
        return cls(int(data.get("requests", 0)), int(data.get("errors", 0)), latency,
                   {str(k): int(v) for k, v in (data.get("outputs") or {}).items()},
                   int(data.get("shadow_compared", 0)), int(data.get("shadow_agreed", 0)),
                   str(data.get("state", "loading")), str(data.get("error", "")))


def output_distance(a: dict[str, int], b: dict[str, int]) -> float | None:
    """Jensen-Shannon distance (base 2, 0 = same, 1 = disjoint) of two output histograms;
    None when either is empty."""
    keys = sorted(set(a) | set(b))
    pa = np.array([a.get(k, 0) for k in keys], dtype=float)
    pb = np.array([b.get(k, 0) for k in keys], dtype=float)
    if pa.sum() == 0 or pb.sum() == 0:
        return None
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(pa, pb, base=2))


def shift_p_value(a: dict[str, int], b: dict[str, int]) -> float | None:
    """How likely two output histograms this different are if both versions answer
    alike: a chi-square test of homogeneity (keys expected fewer than 5 times are pooled,
    as the test needs); None when either is empty or there is one category.

    A distance alone is noisy on small windows (two samples of 20 from one distribution
    are often 0.2-0.3 apart); with this, a shift is only called when it is also
    unlikely to be chance.
    """
    na, nb = sum(a.values()), sum(b.values())
    if na == 0 or nb == 0:
        return None
    keys = sorted(set(a) | set(b))
    share = na / (na + nb)
    big = [k for k in keys if min(share, 1 - share) * (a.get(k, 0) + b.get(k, 0)) >= 5]
    rest = [k for k in keys if k not in big]
    rows = [[a.get(k, 0) for k in big], [b.get(k, 0) for k in big]]
    if rest:
        rows[0].append(sum(a.get(k, 0) for k in rest))
        rows[1].append(sum(b.get(k, 0) for k in rest))
    table = np.array(rows, dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return None
    from scipy.stats import chi2_contingency

    return float(chi2_contingency(table, correction=False).pvalue)


def _keys(values: np.ndarray[Any, Any]) -> list[str]:
    if values.dtype.kind in "iub" or values.dtype.kind in "OUS":
        return [f"c:{v}" for v in values.tolist()]
    if values.dtype.kind == "f":
        x = values.astype(float)
        # Integral floats are labels too (a classifier answering 0.0 / 1.0).
        if np.all(np.isfinite(x)) and np.all(x == np.round(x)) and np.all(np.abs(x) < 1000):
            return [f"c:{int(v)}" for v in x.tolist()]
        t = np.sign(x) * np.log1p(np.abs(x))
        bins = np.floor(np.nan_to_num(t, nan=0.0, posinf=1e6, neginf=-1e6) / BIN_WIDTH)
        return [f"b:{int(b)}" for b in bins.tolist()]
    return [f"c:{v}" for v in values.tolist()]


def _merge(a: dict[str, int], b: dict[str, int], sign: int) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + sign * value
    return out


def fleet_total(reports: list[dict[str, Any]]) -> VersionStats:
    """The sum of several servers' counters for one version."""
    total = VersionStats()
    for data in reports:
        total = total + VersionStats.from_dict(data)
    return total


__all__ = ["LATENCY_BOUNDS_MS", "VersionStats", "fleet_total", "output_distance",
           "shift_p_value"]
