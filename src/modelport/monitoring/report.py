"""One endpoint's monitoring report: traffic, realized metrics, drift and alerts.

Traffic is the registry's cumulative counters per version (summed over servers: what
the servers counted since they started, not only the window: the counters keep no
history); realized metrics and drift cover the window. ``to_html`` renders a
self-contained page (inline CSS, no scripts or external fetches, every value escaped).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelport.client import Registry
from modelport.errors import NotFoundError
from modelport.monitoring.evaluate import version_drift
from modelport.monitoring.realized import realized_metrics
from modelport.registry.traffic import fleet_total
from modelport.uri import validate_name


def build(registry: Registry, root: str | Path, endpoint: str, window: timedelta,
          now: datetime | None = None, model: str | None = None) -> dict[str, Any]:
    """The report as plain JSON-ready data (``model``: the registered model an endpoint
    without a deployment serves, when its name is not the endpoint's)."""
    validate_name(endpoint, "endpoint name")
    until = now or datetime.now(UTC)
    by_version: dict[int, list[dict[str, Any]]] = {}
    for r in registry.records.traffic(endpoint):
        by_version.setdefault(r.version, []).append(r.stats)
    traffic = []
    for version, reports in sorted(by_version.items()):
        s = fleet_total(reports)
        traffic.append({"version": version, "requests": s.requests, "errors": s.errors,
                        "error_rate": s.error_rate, "p50_ms": s.latency_quantile(0.5),
                        "p99_ms": s.latency_quantile(0.99)})
    realized = realized_metrics(root, endpoint, window, until)
    dep = registry.deployments.find(endpoint)
    drift: dict[str, Any] = {"status": "none", "note": "", "features": []}
    # The stable version's drift; an endpoint served by alias without a deployment has
    # no stable version: the version that answered most in the window stands for it.
    stable: int | None = dep.stable if dep is not None else None
    model = dep.model_name if dep is not None else (model or endpoint)
    if stable is None and realized.versions:
        stable = max(realized.versions, key=lambda v: v.predictions).version
    if stable is None:
        drift["note"] = f"endpoint {endpoint!r} has no stable version and logged nothing"
    else:
        try:
            report, why = version_drift(registry, root, endpoint, model, stable,
                                        until - window, until)
        except NotFoundError:  # logged under a name no registered model has
            report, why = None, f"no registered model {model!r} to compare {endpoint!r} with"
        if report is None:
            drift["note"] = why
        else:
            drift = {"version": stable, **report.to_dict(), "note": report.message}
    return {"endpoint": endpoint, "since": (until - window).isoformat(),
            "until": until.isoformat(), "traffic": traffic, "realized": realized.to_dict(),
            "drift": drift, "alerts": [a.to_dict() for a in registry.alerts.list(endpoint)]}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row)
                   + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        "th{background:#f3f3f3}.note{color:#666}")


def to_html(data: dict[str, Any]) -> str:
    """A self-contained HTML page of the report."""
    e = html.escape
    parts = [f"<h1>modelport report: {e(data['endpoint'])}</h1>",
             f"<p class=note>{e(data['since'])} → {e(data['until'])}</p>", "<h2>Traffic</h2>",
             _table(["version", "requests", "errors", "error rate", "p50 ms", "p99 ms"],
                    [[t["version"], t["requests"], t["errors"], t["error_rate"], t["p50_ms"],
                      t["p99_ms"]] for t in data["traffic"]]),
             "<h2>Realized metrics</h2>"]
    versions = data["realized"]["versions"]
    names = list(dict.fromkeys(m for v in versions for m in v["metrics"]))
    parts.append(_table(["version", "predictions", "labelled", *names],
                        [[v["version"], v["predictions"], v["labelled"],
                          *(v["metrics"].get(n) for n in names)] for v in versions]))
    drift = data["drift"]
    parts.append("<h2>Drift</h2>")
    if drift["status"] != "ok":
        parts.append(f"<p class=note>{e(drift['note'])}</p>")
    else:
        parts.append(_table(["feature", "kind", "status", "test", "statistic", "p-value",
                             "psi", "drifted"],
                            [[f["feature"], f["kind"], f["status"], f["test"],
                              f["statistic"], f["p_value"], f["psi"], f["drifted"]]
                             for f in drift["features"]]))
    parts.append("<h2>Alerts</h2>")
    parts.append(_table(["rule", "state", "severity", "value", "threshold", "started",
                         "resolved", "message"],
                        [[a["rule"], a["state"], a["severity"], a["value"], a["threshold"],
                          a["started_at"], a["resolved_at"], a["message"]]
                         for a in data["alerts"]]))
    return ("<!doctype html><html><head><meta charset=utf-8>"
            f"<title>modelport report: {e(data['endpoint'])}</title><style>{_CSS}</style>"
            "</head><body>" + "".join(parts) + "</body></html>\n")


__all__ = ["build", "to_html"]
