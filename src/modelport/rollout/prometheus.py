"""The Prometheus analysis provider: PromQL over the servers' own metrics.

Queries are ``string.Template`` texts filled with ``$endpoint``, ``$version`` (the
candidate's or stable's number) and ``$window`` (the step's age, e.g. ``42s``), sent
to ``/api/v1/query`` for candidate and stable. The defaults read what
``modelport.serving.metrics`` exports; ``queries`` overrides them or adds extra
metrics (e.g. ``accuracy``, judged by ``Thresholds.metrics``).
"""

from __future__ import annotations

import math
from datetime import datetime
from string import Template
from typing import Any

import httpx

from modelport.errors import ConfigurationError, InvalidInputError
from modelport.registry.entities import Rollout, TrafficReport
from modelport.rollout.analysis import Measurements, Numbers, Window

_SEL = 'model="$endpoint",version="$version"'
DEFAULT_QUERIES = {
    "requests": f"sum(increase(modelport_requests_total{{{_SEL}}}[$window]))",
    "errors": f'sum(increase(modelport_requests_total{{{_SEL},status=~"5.."}}[$window]))',
    "p99_ms": ("1000 * histogram_quantile(0.99, sum by (le) "
               f"(increase(modelport_request_duration_seconds_bucket{{{_SEL}}}[$window])))"),
}
ZERO_WHEN_EMPTY = ("errors",)  # no 5xx series at all means no errors, not "unknown"


class PrometheusProvider:
    """Measures a rollout with instant PromQL queries against a Prometheus server."""

    name = "prometheus"

    def __init__(self, url: str, *, queries: dict[str, str] | None = None,
                 timeout: float = 2.0, client: httpx.Client | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"--prometheus-url must be an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self.queries = {**DEFAULT_QUERIES, **(queries or {})}
        for name, text in self.queries.items():
            try:
                Template(text).substitute(endpoint="e", version="1", window="1s")
            except (KeyError, ValueError) as exc:
                raise InvalidInputError(
                    f"query {name!r}: only $endpoint, $version and $window may be used "
                    f"({exc})") from None
        self.timeout = timeout
        self._client = client

    def snapshot(self, rollout: Rollout, reports: list[TrafficReport] | None = None,
                 ) -> dict[str, Any]:
        """Nothing: the window is a time range, and the step's start is stored anyway."""
        return {}

    def measure(self, rollout: Rollout, window: Window) -> Measurements:
        """Every query for candidate and stable, evaluated at the window's end."""
        span = f"{max(1, math.ceil(window.seconds))}s"
        cand = self._side(rollout.deployment, rollout.candidate, span, window.end)
        stable = self._side(rollout.deployment, rollout.stable, span, window.end) \
            if rollout.stable is not None else {}
        return Measurements(cand, stable, {"prometheus": self.url, "range": span})

    def _side(self, endpoint: str, version: int, span: str, at: datetime) -> Numbers:
        out: Numbers = {}
        for name, text in self.queries.items():
            query = Template(text).substitute(endpoint=endpoint, version=str(version),
                                              window=span)
            value = self.query(query, at)
            out[name] = 0.0 if value is None and name in ZERO_WHEN_EMPTY else value
        requests, errors = out.get("requests"), out.get("errors")
        if "error_rate" not in self.queries:
            out["error_rate"] = (errors or 0.0) / requests if requests else None
        return out

    def query(self, promql: str, at: datetime | None = None) -> float | None:
        """One instant query's scalar value (the sum of a vector), None when empty."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        try:
            client = self._client or httpx
            resp = client.get(f"{self.url}/api/v1/query", params=params,
                              timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ConfigurationError(f"Prometheus at {self.url} unreachable: {exc}") from None
        try:
            body = resp.json()
        except ValueError:
            raise ConfigurationError(
                f"Prometheus at {self.url} answered {resp.status_code} without JSON") from None
        if body.get("status") != "success":
            raise InvalidInputError(f"Prometheus refused {promql!r}: "
                                    f"{body.get('errorType')}: {body.get('error')}")
        return _scalar(body.get("data") or {})


def _scalar(data: dict[str, Any]) -> float | None:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and result:
        values = [float(result[1])]
    elif kind == "vector" and result:
        values = [float(item["value"][1]) for item in result]
    else:
        return None
    values = [v for v in values if math.isfinite(v)]
    return sum(values) if values else None


__all__ = ["DEFAULT_QUERIES", "PrometheusProvider"]
