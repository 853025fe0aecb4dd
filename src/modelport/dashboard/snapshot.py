"""What the dashboard shows, as plain JSON: built from the registry and the monitoring store.

Two views, polled at two speeds because they cost very differently:

- ``overview``: every endpoint's desired state, aliases, recent versions with their gate
  results, the live (or latest) rollout with its assessment, per-version traffic now,
  open and recent alerts, and the chart series. Registry reads only; polled every
  couple of seconds.
- ``detail``: one endpoint's drift per feature and realized metrics over a window (a
  DuckDB scan of the prediction log), and its history (alias moves, deployment
  events). Polled every ten seconds or so, and cached for as long by the route.

Nothing here writes: the dashboard is read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelport import __version__
from modelport.client import Registry
from modelport.dashboard.sampler import TrafficSampler, fleet_by_version
from modelport.errors import ModelportError, NotFoundError
from modelport.registry.entities import Deployment, ModelVersion
from modelport.rollout import service

RECENT_VERSIONS = 8
RECENT_ALERTS = 10
RECENT_EVENTS = 20


def overview(registry: Registry, served: Mapping[str, str],
             sampler: TrafficSampler | None) -> dict[str, Any]:
    """Every endpoint this server serves or the registry deploys, and the models."""
    deployments = {d.name: d for d in registry.deployments.list()}
    names = sorted(set(served) | set(deployments))
    endpoints = [_endpoint(registry, name, deployments.get(name), served.get(name), sampler)
                 for name in names]
    models = [{"name": m.name, "latest_version": m.latest_version,
               "versions": m.version_count, "aliases": m.aliases,
               "updated_at": m.updated_at.isoformat()} for m in registry.list()]
    return {"server": {"version": __version__, "time": datetime.now(UTC).isoformat()},
            "endpoints": endpoints, "models": models}


def endpoints_of(registry: Registry, served: Mapping[str, str]) -> list[str]:
    """The endpoint names the dashboard follows (served here or deployed anywhere)."""
    return sorted(set(served) | {d.name for d in registry.deployments.list()})


def _endpoint(registry: Registry, name: str, dep: Deployment | None, model: str | None,
              sampler: TrafficSampler | None) -> dict[str, Any]:
    model_name = dep.model_name if dep is not None else (model or name)
    try:
        aliases = registry.get_model(model_name).aliases
        versions = registry.list(model_name)[:RECENT_VERSIONS]  # newest first
    except NotFoundError:
        aliases, versions = {}, []
    traffic = fleet_by_version(registry, name)
    roles = _roles(dep)
    return {
        "name": name, "model": model_name,
        "deployment": _deployment(dep),
        "aliases": aliases,
        "versions": [_version(registry, v) for v in versions],
        "traffic": [{"version": v, "role": roles.get(v, ""), "requests": s.requests,
                     "errors": s.errors, "error_rate": s.error_rate,
                     "p50_ms": s.latency_quantile(0.5), "p99_ms": s.latency_quantile(0.99),
                     "agreement": s.agreement}
                    for v, s in sorted(traffic.items())],
        "rollout": _rollout(registry, name) if dep is not None else None,
        "alerts": [a.to_dict() for a in registry.alerts.list(name, limit=RECENT_ALERTS)],
        "series": sampler.series(name) if sampler is not None else {"t": [], "versions": {}},
    }


def _roles(dep: Deployment | None) -> dict[int, str]:
    if dep is None:
        return {}
    roles: dict[int, str] = {}
    if dep.stable is not None:
        roles[dep.stable] = "stable"
    if dep.candidate is not None:
        roles[dep.candidate] = dep.mode.value if dep.mode else "candidate"
    return roles


def _deployment(dep: Deployment | None) -> dict[str, Any] | None:
    if dep is None:
        return None
    return {**dep.state(), "alias": dep.alias, "updated_at": dep.updated_at.isoformat(),
            "updated_by": dep.updated_by}


def _version(registry: Registry, v: ModelVersion) -> dict[str, Any]:
    gate = registry.records.latest_gate(v.name, v.version)
    return {"version": v.version, "flavor": v.flavor, "metrics": v.metrics,
            "aliases": list(v.aliases), "created_at": v.created_at.isoformat(),
            "created_by": v.created_by, "digest": v.artifact_digest[:12],
            "gate": None if gate is None else {"passed": gate.passed, "against": gate.against,
                                               "at": gate.created_at.isoformat()}}


def _rollout(registry: Registry, endpoint: str) -> dict[str, Any] | None:
    """The endpoint's newest rollout, assessed live while it runs."""
    try:
        found = service.status(registry, endpoint)
    except ModelportError:
        return None
    if not found:
        return None
    st = found[0]
    r = st.rollout
    return {"id": r.id, "status": r.status.value, "strategy": r.strategy,
            "candidate": r.candidate, "stable": r.stable, "steps": r.steps,
            "step_index": r.step_index, "weight": r.weight, "reason": r.reason,
            "step_seconds": r.step_seconds, "created_by": r.created_by,
            "updated_at": r.updated_at.isoformat(),
            "assessment": st.assessment.to_dict() if st.assessment else None,
            "note": st.note}


def detail(registry: Registry, root: str | Path, endpoint: str, window: timedelta,
           model: str | None = None) -> dict[str, Any]:
    """One endpoint's drift, realized metrics and history over ``window`` (``model``:
    the registered model it serves, if it has no deployment)."""
    from modelport.monitoring.report import build

    dep = registry.deployments.find(endpoint)
    model = dep.model_name if dep is not None else (model or endpoint)
    report = build(registry, root, endpoint, window, model=model)
    try:
        aliases = [e.to_dict() for e in registry.history(model)][-RECENT_EVENTS:]
    except NotFoundError:
        aliases = []
    events = ([e.to_dict() for e in registry.deployments.events(endpoint, limit=RECENT_EVENTS)]
              if dep is not None else [])
    return {"endpoint": endpoint, "since": report["since"], "until": report["until"],
            "drift": report["drift"], "realized": report["realized"],
            "alias_history": list(reversed(aliases)), "events": list(reversed(events))}


__all__ = ["detail", "endpoints_of", "overview"]
