"""Deployments (each endpoint's desired state), their event history, and rollouts.

Every change of a deployment is one transaction that bumps its ``generation`` and
appends a ``DeploymentEvent`` holding the resulting state, who made it, why and the
metrics that decided it. A rollout's move (next step, promotion, rollback) changes the
rollout and the deployment in that same transaction, so a controller that dies between
two moves leaves nothing half done. The database itself refuses a second active
rollout on one endpoint (a partial unique index). Every change also appends an audit
record (``registry.audit``) with the state before and after, in the same transaction.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from modelport.errors import (
    ConflictError,
    DeploymentNotFoundError,
    InvalidInputError,
    RolloutNotFoundError,
)
from modelport.registry import audit
from modelport.registry.entities import (
    Deployment,
    DeploymentEvent,
    Mode,
    Rollout,
    RolloutStatus,
)
from modelport.registry.schema import deployment_events, deployments, rollouts
from modelport.registry.store import SqlRegistryStore
from modelport.registry.times import as_utc, utcnow
from modelport.uri import validate_alias, validate_name

DEPLOYMENT_FIELDS = ("stable", "candidate", "mode", "weight", "sticky", "previous", "alias")
ROLLOUT_FIELDS = ("step_index", "step_started_at", "baseline", "status", "reason", "stable",
                  "analysis")
ACTIVE = (RolloutStatus.RUNNING.value, RolloutStatus.PAUSED.value)


def _audit_state(dep: Deployment, rollout: Rollout | None = None) -> dict[str, Any]:
    """A deployment's state as its audit records hold it (with its rollout's, if any)."""
    out: dict[str, Any] = {**dep.state(), "model": dep.model_name, "alias": dep.alias}
    if rollout is not None:
        out["rollout"] = {"id": rollout.id, "status": rollout.status.value,
                          "step_index": rollout.step_index, "strategy": rollout.strategy}
    return out


def _deployment(r: RowMapping) -> Deployment:
    return Deployment(
        name=r["name"], model_name=r["model_name"], stable=r["stable"],
        candidate=r["candidate"], mode=Mode(r["mode"]) if r["mode"] else None,
        weight=float(r["weight"]), sticky=r["sticky"], previous=r["previous"],
        alias=r["alias"], generation=r["generation"],
        created_at=as_utc(r["created_at"]),  # type: ignore[arg-type]
        updated_at=as_utc(r["updated_at"]),  # type: ignore[arg-type]
        updated_by=r["updated_by"],
    )


def _rollout(r: RowMapping) -> Rollout:
    return Rollout(
        id=r["id"], deployment=r["deployment"], model_name=r["model_name"],
        candidate=r["candidate"], stable=r["stable"], strategy=r["strategy"],
        steps=[float(s) for s in r["steps"]], step_seconds=r["step_seconds"],
        step_requests=r["step_requests"], step_index=r["step_index"],
        step_started_at=as_utc(r["step_started_at"]), baseline=dict(r["baseline"] or {}),
        analysis=dict(r["analysis"] or {}), status=RolloutStatus(r["status"]),
        reason=r["reason"], require_gate=bool(r["require_gate"]),
        created_at=as_utc(r["created_at"]),  # type: ignore[arg-type]
        updated_at=as_utc(r["updated_at"]),  # type: ignore[arg-type]
        created_by=r["created_by"],
    )


def _event(r: RowMapping) -> DeploymentEvent:
    return DeploymentEvent(
        id=r["id"], deployment=r["deployment"], kind=r["kind"], rollout_id=r["rollout_id"],
        actor=r["actor"], reason=r["reason"], state=dict(r["state"] or {}),
        metrics=dict(r["metrics"] or {}), at=as_utc(r["at"]),  # type: ignore[arg-type]
    )


class DeploymentStore:
    """Desired state, its history and rollouts, in the registry's database."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self.store = store

    # -- deployments --------------------------------------------------------------------

    def find(self, name: str) -> Deployment | None:
        """The deployment ``name``, or None if there is none."""
        validate_name(name)
        with self.store.reading() as conn:
            row = conn.execute(
                sa.select(deployments).where(deployments.c.name == name)).mappings().first()
        return _deployment(row) if row is not None else None

    def get(self, name: str) -> Deployment:
        """The deployment ``name`` (404 if there is none)."""
        found = self.find(name)
        if found is None:
            raise DeploymentNotFoundError(f"no deployment named {name!r}", name=name)
        return found

    def list(self) -> list[Deployment]:
        """Every deployment, by name."""
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(deployments).order_by(deployments.c.name)).mappings()
            return [_deployment(r) for r in rows]

    def many(self, names: Iterable[str]) -> dict[str, Deployment]:
        """The deployments among ``names``, in one query (what a server polls)."""
        wanted = list(names)
        if not wanted:
            return {}
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(deployments).where(deployments.c.name.in_(wanted)))
            return {r["name"]: _deployment(r) for r in rows.mappings()}

    def create(self, name: str, model_name: str, stable: int | None, actor: str, *,
               alias: str | None = None, reason: str = "") -> Deployment:
        """A new deployment serving ``stable`` of ``model_name`` (409 if it exists)."""
        with self.store.writing() as conn:
            return self._create_in(conn, name, model_name, stable, actor, alias, reason)

    def _create_in(self, conn: Connection, name: str, model_name: str, stable: int | None,
                   actor: str, alias: str | None, reason: str) -> Deployment:
        validate_name(name)
        if alias is not None:
            validate_alias(alias)
        if stable is not None:
            self._check_version(conn, model_name, stable)
        now = utcnow()
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(deployments).values(
                    name=name, model_name=model_name, stable=stable, candidate=None, mode=None,
                    weight=0.0, sticky=None, previous=None, alias=alias, generation=1,
                    created_at=now, updated_at=now, updated_by=actor))
        except IntegrityError:
            raise ConflictError(f"deployment {name!r} already exists") from None
        dep = self._row(conn, name)
        self._append(conn, dep, "created", actor, reason, {}, None, now)
        audit.append(conn, actor=actor, action=audit.DEPLOYMENT_CREATE, target=name,
                     model=model_name, after={**_audit_state(dep), "kind": "created"},
                     reason=reason)
        return dep

    def update(self, name: str, actor: str, kind: str, *, reason: str = "",
               metrics: dict[str, Any] | None = None, rollout_id: int | None = None,
               **changes: Any) -> Deployment:
        """Change a deployment's desired state and record why, in one transaction.

        ``changes`` are among stable, candidate, mode, weight, sticky, previous, alias.
        When ``stable`` changes and the deployment has an alias, the alias moves too.
        """
        with self.store.writing() as conn:
            return self._update_in(conn, name, actor, kind, reason, metrics or {}, rollout_id,
                                   changes)

    def _update_in(self, conn: Connection, name: str, actor: str, kind: str, reason: str,
                   metrics: dict[str, Any], rollout_id: int | None,
                   changes: dict[str, Any],
                   rollout: tuple[Rollout | None, Rollout] | None = None) -> Deployment:
        unknown = set(changes) - set(DEPLOYMENT_FIELDS)
        if unknown:
            raise InvalidInputError(f"unknown deployment fields: {sorted(unknown)}")
        before = self._row(conn, name, lock=True)
        values = {k: (v.value if isinstance(v, Mode) else v) for k, v in changes.items()}
        if "weight" in values and not 0.0 <= float(values["weight"]) <= 100.0:
            raise InvalidInputError(f"weight must be within 0-100, got {values['weight']}")
        for key in ("stable", "candidate"):
            if values.get(key) is not None:
                self._check_version(conn, before.model_name, int(values[key]))
        now = utcnow()
        conn.execute(sa.update(deployments).where(deployments.c.name == name).values(
            **values, generation=deployments.c.generation + 1, updated_at=now,
            updated_by=actor))
        after = self._row(conn, name)
        if after.alias and after.stable is not None and after.stable != before.stable:
            self.store.set_alias_in(conn, after.model_name, after.alias, after.stable, actor,
                                    f"{kind}: {reason}" if reason else kind)
        self._append(conn, after, kind, actor, reason, metrics, rollout_id, now)
        r_before, r_after = rollout if rollout is not None else (None, None)
        audit.append(conn, actor=actor, action=audit.deployment_action(kind), target=name,
                     model=after.model_name, before=_audit_state(before, r_before),
                     after={**_audit_state(after, r_after), "kind": kind}, reason=reason)
        return after

    def record(self, name: str, kind: str, actor: str, *, reason: str = "",
               metrics: dict[str, Any] | None = None,
               rollout_id: int | None = None) -> DeploymentEvent:
        """Append an event without changing the desired state (an analysis verdict)."""
        with self.store.writing() as conn:
            dep = self._row(conn, name)
            return self._append(conn, dep, kind, actor, reason, metrics or {}, rollout_id,
                                utcnow())

    def events(self, name: str, *, limit: int | None = None) -> builtins.list[DeploymentEvent]:
        """The deployment's history, oldest first (the newest ``limit`` if given)."""
        validate_name(name)
        with self.store.reading() as conn:
            q = sa.select(deployment_events).where(deployment_events.c.deployment == name)
            if limit is not None:
                q = q.order_by(deployment_events.c.id.desc()).limit(limit)
                rows = list(conn.execute(q).mappings())[::-1]
            else:
                rows = list(conn.execute(q.order_by(deployment_events.c.id)).mappings())
            return [_event(r) for r in rows]

    def _row(self, conn: Connection, name: str, *, lock: bool = False) -> Deployment:
        validate_name(name)
        q = sa.select(deployments).where(deployments.c.name == name)
        if lock:
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        if row is None:
            raise DeploymentNotFoundError(f"no deployment named {name!r}", name=name)
        return _deployment(row)

    def _check_version(self, conn: Connection, model_name: str, version: int) -> None:
        model = self.store._model_row(conn, model_name)
        self.store._version_row(conn, model["id"], model_name, version)

    @staticmethod
    def _append(conn: Connection, dep: Deployment, kind: str, actor: str, reason: str,
                metrics: dict[str, Any], rollout_id: int | None,
                at: datetime) -> DeploymentEvent:
        state = dep.state()
        event_id = conn.execute(sa.insert(deployment_events).values(
            deployment=dep.name, kind=kind, rollout_id=rollout_id, actor=actor, reason=reason,
            state=state, metrics=metrics, at=at).returning(deployment_events.c.id)).scalar_one()
        return DeploymentEvent(event_id, dep.name, kind, rollout_id, actor, reason, state,
                               metrics, at)

    # -- rollouts -----------------------------------------------------------------------

    def start_rollout(
        self, deployment: str, *, model_name: str, candidate: int, strategy: str,
        steps: builtins.list[float], actor: str, mode: Mode, stable: int | None = None,
        step_seconds: float | None = None, step_requests: int | None = None,
        analysis: dict[str, Any] | None = None, require_gate: bool = False,
        sticky: str | None = None, alias: str | None = "champion", reason: str = "",
    ) -> tuple[Rollout, Deployment]:
        """Begin a rollout: the candidate joins the deployment at weight 0 (servers load
        and warm it; the controller gives it traffic once they have).

        Creates the deployment (serving ``stable``) if it does not exist. Refuses (409) a
        second active rollout on the endpoint or a candidate that is already stable.
        """
        now = utcnow()
        with self.store.writing() as conn:
            self._check_version(conn, model_name, candidate)
            existing = conn.execute(sa.select(deployments.c.name).where(
                deployments.c.name == deployment)).first()
            if existing is None:
                self._create_in(conn, deployment, model_name, stable, actor, alias,
                                "created for a rollout")
            dep = self._row(conn, deployment, lock=True)
            if dep.model_name != model_name:
                raise InvalidInputError(
                    f"deployment {deployment!r} serves model {dep.model_name!r}, "
                    f"not {model_name!r}")
            if dep.stable == candidate:
                raise ConflictError(f"{model_name}/{candidate} is already the stable version "
                                    f"of {deployment!r}")
            active = self._active_in(conn, deployment)
            if active is not None:
                raise ConflictError(
                    f"deployment {deployment!r} already has an active rollout "
                    f"(#{active.id}, {model_name}/{active.candidate}, {active.status.value}); "
                    "abort it first")
            try:
                with conn.begin_nested():
                    rollout_id = conn.execute(sa.insert(rollouts).values(
                        deployment=deployment, model_name=model_name, candidate=candidate,
                        stable=dep.stable, strategy=strategy, steps=list(steps),
                        step_seconds=step_seconds, step_requests=step_requests, step_index=0,
                        step_started_at=None, baseline={}, analysis=analysis or {},
                        status=RolloutStatus.RUNNING.value, reason=reason,
                        require_gate=require_gate, created_at=now, updated_at=now,
                        created_by=actor).returning(rollouts.c.id)).scalar_one()
            except IntegrityError:
                raise ConflictError(
                    f"deployment {deployment!r} already has an active rollout") from None
            dep = self._update_in(conn, deployment, actor, "rollout_started",
                                  reason or f"{strategy} of {model_name}/{candidate}", {},
                                  rollout_id, {"candidate": candidate, "mode": mode,
                                               "weight": 0.0, "sticky": sticky},
                                  (None, self._rollout_row(conn, rollout_id)))
            return self._rollout_row(conn, rollout_id), dep

    def rollout(self, rollout_id: int) -> Rollout:
        """The rollout with this id (404 if none)."""
        with self.store.reading() as conn:
            return self._rollout_row(conn, rollout_id)

    def active_rollout(self, deployment: str) -> Rollout | None:
        """The running or paused rollout of ``deployment``, if any."""
        with self.store.reading() as conn:
            return self._active_in(conn, deployment)

    def rollouts(self, deployment: str | None = None, *,
                 active_only: bool = False) -> builtins.list[Rollout]:
        """Rollouts, newest first (of one deployment, or only active ones)."""
        q = sa.select(rollouts).order_by(rollouts.c.id.desc())
        if deployment is not None:
            q = q.where(rollouts.c.deployment == deployment)
        if active_only:
            q = q.where(rollouts.c.status.in_(ACTIVE))
        with self.store.reading() as conn:
            return [_rollout(r) for r in conn.execute(q).mappings()]

    def transition(
        self, rollout_id: int, actor: str, kind: str, *, reason: str = "",
        metrics: dict[str, Any] | None = None, expect_step: int | None = None,
        rollout_changes: dict[str, Any] | None = None,
        deployment_changes: dict[str, Any] | None = None,
    ) -> tuple[Rollout, Deployment]:
        """Move a rollout and its deployment together, in one transaction, with an event.

        Refuses (409) a rollout that is no longer active, or whose step is not
        ``expect_step`` (another controller or a person moved it meanwhile).
        """
        changes = dict(rollout_changes or {})
        unknown = set(changes) - set(ROLLOUT_FIELDS)
        if unknown:
            raise InvalidInputError(f"unknown rollout fields: {sorted(unknown)}")
        if isinstance(changes.get("status"), RolloutStatus):
            changes["status"] = changes["status"].value
        with self.store.writing() as conn:
            current = self._rollout_row(conn, rollout_id, lock=True)
            if not current.status.active:
                raise ConflictError(
                    f"rollout #{rollout_id} is already {current.status.value}")
            if expect_step is not None and current.step_index != expect_step:
                raise ConflictError(
                    f"rollout #{rollout_id} moved to step {current.step_index} meanwhile")
            now = utcnow()
            conn.execute(sa.update(rollouts).where(rollouts.c.id == rollout_id)
                         .values(**changes, updated_at=now))
            moved = self._rollout_row(conn, rollout_id)
            dep = self._update_in(conn, current.deployment, actor, kind, reason,
                                  metrics or {}, rollout_id, dict(deployment_changes or {}),
                                  (current, moved))
            return moved, dep

    def _rollout_row(self, conn: Connection, rollout_id: int, *,
                     lock: bool = False) -> Rollout:
        q = sa.select(rollouts).where(rollouts.c.id == rollout_id)
        if lock:
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        if row is None:
            raise RolloutNotFoundError(f"no rollout #{rollout_id}")
        return _rollout(row)

    @staticmethod
    def _active_in(conn: Connection, deployment: str) -> Rollout | None:
        row = conn.execute(sa.select(rollouts).where(
            rollouts.c.deployment == deployment, rollouts.c.status.in_(ACTIVE))).mappings().first()
        return _rollout(row) if row is not None else None


__all__ = ["DeploymentStore"]
