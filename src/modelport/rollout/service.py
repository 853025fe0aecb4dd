"""What people run: start a rollout, watch it, promote, pause, resume, abort, roll back.

Each operation checks its input completely before it writes, and writes in one
registry transaction with an event naming the actor, so a refused operation leaves
nothing behind and every move is in the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelport.client import Registry
from modelport.errors import (
    ConflictError,
    GateFailedError,
    InvalidInputError,
    ModelportError,
    RolloutNotFoundError,
)
from modelport.registry.entities import Deployment, DeploymentEvent, Rollout, RolloutStatus
from modelport.rollout import moves
from modelport.rollout.analysis import Thresholds
from modelport.rollout.assess import PROVIDERS, Assessment, assess, provider_for
from modelport.rollout.strategies import Plan
from modelport.uri import parse_uri, validate_name

DEFAULT_ALIAS = "champion"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AnalysisSpec:
    """How a rollout is judged: the provider and the thresholds."""

    thresholds: Thresholds
    provider: str = "builtin"
    prometheus_url: str | None = None
    queries: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``rollout.analysis`` stored in the registry (checked first)."""
        if self.provider not in PROVIDERS:
            raise InvalidInputError(f"--analysis must be one of {', '.join(PROVIDERS)}, "
                                    f"got {self.provider!r}")
        if self.provider == "prometheus" and not self.prometheus_url:
            raise InvalidInputError("--analysis prometheus needs --prometheus-url")
        if self.provider != "prometheus" and self.prometheus_url:
            raise InvalidInputError("--prometheus-url is only for --analysis prometheus")
        out: dict[str, Any] = {"provider": self.provider, **self.thresholds.to_dict()}
        if self.prometheus_url:
            from modelport.rollout.prometheus import PrometheusProvider

            PrometheusProvider(self.prometheus_url, queries=self.queries)  # validates
            out["prometheus_url"] = self.prometheus_url
            out["queries"] = dict(self.queries or {})
        return out


def start(registry: Registry, endpoint: str, candidate_uri: str, plan: Plan,
          analysis: AnalysisSpec, *, require_gate: bool = False, sticky: str | None = None,
          actor: str | None = None) -> tuple[Rollout, Deployment]:
    """Begin a rollout of ``candidate_uri`` on ``endpoint`` (created, serving the
    model's champion, if it does not exist yet)."""
    validate_name(endpoint, "endpoint name")
    if sticky is not None and not _header_ok(sticky):
        raise InvalidInputError(f"--sticky-header {sticky!r} is not a valid HTTP header name")
    settings = analysis.to_dict()
    version = registry.get(parse_uri(candidate_uri))  # 404 (exit 3) if missing
    existing = registry.deployments.find(endpoint)
    if existing is not None and existing.model_name != version.name:
        raise InvalidInputError(
            f"endpoint {endpoint!r} serves model {existing.model_name!r}; the candidate "
            f"{version.uri} is of model {version.name!r}")
    stable = existing.stable if existing is not None else _champion(registry, version.name)
    if stable is None:
        raise InvalidInputError(
            f"endpoint {endpoint!r} has no stable version to compare with: give "
            f"{version.name} a {DEFAULT_ALIAS!r} alias first "
            f"(modelport models alias {version.name} {DEFAULT_ALIAS} VERSION)")
    if require_gate:
        gate = registry.records.latest_gate(version.name, version.version)
        if gate is None:
            raise GateFailedError(f"{version.uri} has no gate result and --require-gate "
                                  "was given: run modelport gate first")
        if not gate.passed:
            raise GateFailedError(f"{version.uri} failed its latest gate (#{gate.id}, "
                                  f"{gate.created_at:%Y-%m-%d %H:%M} UTC); not rolling out")
    return registry.deployments.start_rollout(
        endpoint, model_name=version.name, candidate=version.version,
        strategy=plan.strategy, steps=plan.steps, actor=actor or registry.settings.user,
        mode=plan.first_mode, stable=stable, step_seconds=plan.step_seconds,
        step_requests=plan.step_requests, analysis=settings, require_gate=require_gate,
        sticky=sticky, alias=DEFAULT_ALIAS,
        reason=f"{plan.strategy} of {version.uri} over steps "
               f"{', '.join(f'{s:g}' for s in plan.steps)}")


def _champion(registry: Registry, model: str) -> int | None:
    aliases = registry.get_model(model).aliases
    return aliases.get(DEFAULT_ALIAS)


def _header_ok(name: str) -> bool:
    allowed = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return bool(name) and len(name) <= 128 and set(name) <= allowed


def active(registry: Registry, endpoint: str) -> Rollout:
    """The endpoint's running or paused rollout (404 if none)."""
    registry.deployments.get(endpoint)  # a clear 404 for an unknown endpoint first
    found = registry.deployments.active_rollout(endpoint)
    if found is None:
        raise RolloutNotFoundError(f"endpoint {endpoint!r} has no active rollout")
    return found


def promote(registry: Registry, endpoint: str, *, actor: str | None = None,
            ) -> tuple[Rollout, Deployment]:
    """Skip the remaining steps: the candidate becomes stable now."""
    r = active(registry, endpoint)
    who = actor or registry.settings.user
    left = len(r.steps) - r.step_index
    return moves.promote(registry, r, who, reason=f"promoted by {who}, skipping {left} "
                         f"of {len(r.steps)} step(s)", metrics={}, expect_step=None)


def pause(registry: Registry, endpoint: str, *, actor: str | None = None,
          ) -> tuple[Rollout, Deployment]:
    """Hold the current step (failing analysis still rolls back)."""
    r = active(registry, endpoint)
    if r.status is RolloutStatus.PAUSED:
        raise ConflictError(f"rollout #{r.id} on {endpoint!r} is already paused")
    return moves.set_paused(registry, r, actor or registry.settings.user, True, _now(), {})


def resume(registry: Registry, endpoint: str, *, actor: str | None = None,
           ) -> tuple[Rollout, Deployment]:
    """Go on from the held step; its window starts afresh."""
    r = active(registry, endpoint)
    if r.status is not RolloutStatus.PAUSED:
        raise ConflictError(f"rollout #{r.id} on {endpoint!r} is not paused")
    baseline = provider_for(registry, r).snapshot(r) if r.step_started_at else {}
    return moves.set_paused(registry, r, actor or registry.settings.user, False, _now(),
                            baseline)


def abort(registry: Registry, endpoint: str, *, actor: str | None = None,
          reason: str = "") -> tuple[Rollout, Deployment]:
    """Take the candidate out at once; stable keeps all traffic."""
    r = active(registry, endpoint)
    who = actor or registry.settings.user
    return moves.end(registry, r, who, RolloutStatus.ABORTED, kind="aborted",
                     reason=reason or f"aborted by {who}", metrics={}, expect_step=None)


def rollback(registry: Registry, endpoint: str, *, actor: str | None = None,
             reason: str = "") -> Deployment:
    """Stable := previous at once (the alias follows); an active rollout is aborted in
    the same transaction."""
    dep = registry.deployments.get(endpoint)
    who = actor or registry.settings.user
    if dep.previous is None:
        raise ConflictError(f"endpoint {endpoint!r} has no previous version to roll back to")
    why = reason or f"rolled back by {who} from {dep.model_name}/{dep.stable} to " \
                    f"{dep.model_name}/{dep.previous}"
    changes: dict[str, Any] = {"stable": dep.previous, "previous": dep.stable}
    r = registry.deployments.active_rollout(endpoint)
    if r is None:
        return registry.deployments.update(endpoint, who, "rollback", reason=why, **changes)
    _, after = registry.deployments.transition(
        r.id, who, "rollback", reason=why + f" (rollout #{r.id} aborted)",
        rollout_changes={"status": RolloutStatus.ABORTED, "reason": why},
        deployment_changes={**moves.CANDIDATE_OUT, **changes})
    return after


def history(registry: Registry, endpoint: str) -> list[DeploymentEvent]:
    """Every event of the endpoint, oldest first (404 for an unknown endpoint)."""
    registry.deployments.get(endpoint)
    return registry.deployments.events(endpoint)


@dataclass(frozen=True)
class Status:
    """One rollout as ``rollout status`` shows it: the row, the desired state, and (for
    a running step) a live assessment, or why there is none."""

    rollout: Rollout
    deployment: Deployment
    assessment: Assessment | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``rollout status --json``."""
        return {"rollout": self.rollout.to_dict(), "deployment": self.deployment.to_dict(),
                "assessment": self.assessment.to_dict() if self.assessment else None,
                "note": self.note}


def status(registry: Registry, endpoint: str | None = None) -> list[Status]:
    """Active rollouts (or the endpoint's newest one, active or not), each assessed."""
    if endpoint is not None:
        registry.deployments.get(endpoint)
        found = registry.deployments.rollouts(endpoint)[:1]
    else:
        found = registry.deployments.rollouts(active_only=True)
    out = []
    for r in found:
        dep = registry.deployments.get(r.deployment)
        seen, note = None, ""
        if not r.status.active:
            note = f"{r.status.value}: {r.reason}"
        elif r.step_started_at is None:
            note = "waiting for every server to load and warm the candidate"
        else:
            try:
                seen = assess(r, provider_for(registry, r), _now())
            except ModelportError as exc:  # a provider outage is shown, not fatal
                note = f"no measurement: {exc}"
        out.append(Status(r, dep, seen, note))
    return out


__all__ = ["AnalysisSpec", "Status", "abort", "active", "history", "pause", "promote",
           "resume", "rollback", "start", "status"]
