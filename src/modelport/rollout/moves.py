"""The moves of a rollout, each one registry transaction with its event.

Shared by the controller (automatic moves) and the operations people run (promote,
pause, abort...), so a move means the same whoever makes it. ``expect_step`` guards
every automatic move: if someone else moved the rollout meanwhile, the registry
refuses (409) and nothing happens twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelport.client import Registry
from modelport.registry.entities import Deployment, Rollout, RolloutStatus
from modelport.rollout.strategies import mode_at

# What the deployment returns to when a candidate leaves: stable takes all traffic.
CANDIDATE_OUT: dict[str, Any] = {"candidate": None, "mode": None, "weight": 0.0,
                                 "sticky": None}


def start_step(registry: Registry, rollout: Rollout, index: int, actor: str, now: datetime,
               baseline: dict[str, Any], *, reason: str, metrics: dict[str, Any],
               kind: str = "step_started") -> tuple[Rollout, Deployment]:
    """Give the candidate step ``index``'s weight and mode; its window starts ``now``."""
    weight = rollout.steps[index]
    return registry.deployments.transition(
        rollout.id, actor, kind, reason=reason, metrics=metrics,
        expect_step=rollout.step_index,
        rollout_changes={"step_index": index, "step_started_at": now, "baseline": baseline},
        deployment_changes={"weight": weight, "mode": mode_at(rollout.strategy, index)})


def promote(registry: Registry, rollout: Rollout, actor: str, *, reason: str,
            metrics: dict[str, Any], expect_step: int | None) -> tuple[Rollout, Deployment]:
    """The candidate becomes stable (the deployment's alias follows), the old stable
    becomes ``previous``."""
    return registry.deployments.transition(
        rollout.id, actor, "promoted", reason=reason, metrics=metrics,
        expect_step=expect_step,
        rollout_changes={"status": RolloutStatus.PROMOTED, "reason": reason},
        deployment_changes={**CANDIDATE_OUT, "stable": rollout.candidate,
                            "previous": rollout.stable})


def end(registry: Registry, rollout: Rollout, actor: str, status: RolloutStatus, *,
        kind: str, reason: str, metrics: dict[str, Any],
        expect_step: int | None) -> tuple[Rollout, Deployment]:
    """The candidate leaves at once (rolled back, failed, aborted); stable keeps all."""
    return registry.deployments.transition(
        rollout.id, actor, kind, reason=reason, metrics=metrics, expect_step=expect_step,
        rollout_changes={"status": status, "reason": reason},
        deployment_changes=dict(CANDIDATE_OUT))


def set_paused(registry: Registry, rollout: Rollout, actor: str, paused: bool,
               now: datetime, baseline: dict[str, Any]) -> tuple[Rollout, Deployment]:
    """Hold the step (pause) or go on (resume: the step's window starts afresh, so time
    spent paused does not count towards it)."""
    changes: dict[str, Any] = {
        "status": RolloutStatus.PAUSED if paused else RolloutStatus.RUNNING}
    if not paused and rollout.step_started_at is not None:
        changes.update(step_started_at=now, baseline=baseline)
    kind = "paused" if paused else "resumed"
    return registry.deployments.transition(
        rollout.id, actor, kind, reason=f"{kind} by {actor}",
        expect_step=rollout.step_index, rollout_changes=changes)


__all__ = ["CANDIDATE_OUT", "end", "promote", "set_paused", "start_step"]
