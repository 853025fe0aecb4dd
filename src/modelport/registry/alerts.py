"""Alert state: each rule's open alert (pending, then firing) and the resolved ones.

The database guarantees at most one open alert per endpoint and rule (a partial unique
index), so two evaluators racing on one rule cannot both open it; the loser sees a
ConflictError and re-reads the row.

Beside the alerts, the evaluator's counter snapshots: the fleet's cumulative traffic
counters per endpoint at each evaluation (as JSON; their layout belongs to
``modelport.registry.traffic``), which its windows are differenced against. Stored
here rather than in memory, a window survives a restart and a takeover.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from modelport.errors import ConflictError, InvalidInputError, NotFoundError
from modelport.registry import audit
from modelport.registry.schema import alerts, counter_snapshots, deployments
from modelport.registry.store import SqlRegistryStore
from modelport.registry.times import as_utc
from modelport.uri import validate_name

STATES = ("pending", "firing", "resolved")
SNAPSHOT_KEEP = timedelta(days=2)
ALERTS_ACTOR = "modelport-alerts"  # who an alert's action is recorded as
_CHANGEABLE = {"state", "value", "message", "action", "fired_at", "resolved_at",
               "last_evaluated_at"}


@dataclass(frozen=True)
class Alert:
    """One alert of one rule: from when its condition first held until it resolved."""

    id: int
    endpoint: str
    rule: str
    state: str
    severity: str
    expr: str
    value: float | None
    threshold: float
    message: str
    action: str
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    last_evaluated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601)."""
        return {k: v.isoformat() if isinstance(v, datetime) else v
                for k, v in asdict(self).items()}


def _alert(r: RowMapping) -> Alert:
    return Alert(
        id=r["id"], endpoint=r["endpoint"], rule=r["rule"], state=r["state"],
        severity=r["severity"], expr=r["expr"], value=r["value"], threshold=r["threshold"],
        message=r["message"], action=r["action"],
        started_at=as_utc(r["started_at"]),  # type: ignore[arg-type]
        fired_at=as_utc(r["fired_at"]), resolved_at=as_utc(r["resolved_at"]),
        last_evaluated_at=as_utc(r["last_evaluated_at"]),  # type: ignore[arg-type]
    )


class AlertStore:
    """Open and past alerts, per endpoint and rule."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self.store = store

    def open_alert(self, endpoint: str, rule: str) -> Alert | None:
        """The rule's pending or firing alert, if any."""
        q = sa.select(alerts).where(alerts.c.endpoint == endpoint, alerts.c.rule == rule,
                                    alerts.c.state.in_(("pending", "firing")))
        with self.store.reading() as conn:
            row = conn.execute(q).mappings().first()
        return None if row is None else _alert(row)

    def open(self, endpoint: str, rule: str, *, state: str, severity: str, expr: str,
             value: float | None, threshold: float, message: str, now: datetime) -> Alert:
        """Start an alert (``pending`` or straight to ``firing``); ConflictError when the
        rule already has an open one."""
        validate_name(endpoint, "endpoint name")
        validate_name(rule, "alert name")
        if state not in ("pending", "firing"):
            raise InvalidInputError(f"a new alert is pending or firing, not {state!r}")
        values = dict(endpoint=endpoint, rule=rule, state=state, severity=severity, expr=expr,
                      value=value, threshold=threshold, message=message, action="",
                      started_at=now, fired_at=now if state == "firing" else None,
                      resolved_at=None, last_evaluated_at=now)
        try:
            with self.store.writing() as conn:
                new_id = conn.execute(sa.insert(alerts).values(**values)
                                      .returning(alerts.c.id)).scalar_one()
        except sa.exc.IntegrityError:
            raise ConflictError(f"alert {rule!r} of {endpoint!r} is already open") from None
        return Alert(id=new_id, **values)  # type: ignore[arg-type]

    def update(self, alert_id: int, **changes: Any) -> Alert:
        """Change an alert's state, value, message, action or times; returns it.

        Setting ``action`` (what the alert did: aborted a rollout, rolled back) is
        audited, as done by ``modelport-alerts``.
        """
        bad = set(changes) - _CHANGEABLE
        if bad:
            raise InvalidInputError(f"cannot change {', '.join(sorted(bad))} of an alert")
        if "state" in changes and changes["state"] not in STATES:
            raise InvalidInputError(f"unknown alert state {changes['state']!r}")
        with self.store.writing() as conn:
            done = conn.execute(sa.update(alerts).where(alerts.c.id == alert_id)
                                .values(**changes)).rowcount
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)
                               ).mappings().first()
            if not done or row is None:
                raise NotFoundError(f"no alert #{alert_id}")
            if changes.get("action"):
                self._audit_action(conn, _alert(row))
        return _alert(row)

    @staticmethod
    def _audit_action(conn: sa.Connection, alert: Alert) -> None:
        model = conn.execute(sa.select(deployments.c.model_name).where(
            deployments.c.name == alert.endpoint)).scalar()
        audit.append(conn, actor=ALERTS_ACTOR, action=audit.ALERT_ACTION, target=alert.endpoint,
                     model=model, after={"alert_id": alert.id, "rule": alert.rule,
                                         "state": alert.state, "action": alert.action},
                     reason=alert.message)

    def discard(self, alert_id: int) -> None:
        """Forget a pending alert whose condition stopped before it fired."""
        with self.store.writing() as conn:
            conn.execute(sa.delete(alerts).where(alerts.c.id == alert_id,
                                                 alerts.c.state == "pending"))

    def list(self, endpoint: str | None = None, *, state: str | None = None,
             limit: int = 50) -> list[Alert]:
        """Alerts newest first (of one endpoint, in one state, if given)."""
        q = sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit)
        if endpoint is not None:
            q = q.where(alerts.c.endpoint == validate_name(endpoint, "endpoint name"))
        if state is not None:
            if state not in STATES:
                raise InvalidInputError(f"alert state must be one of {', '.join(STATES)}, "
                                        f"got {state!r}")
            q = q.where(alerts.c.state == state)
        with self.store.reading() as conn:
            return [_alert(r) for r in conn.execute(q).mappings()]


    # -- counter snapshots --------------------------------------------------------------

    def record_counters(self, endpoint: str, taken_at: datetime, stats: dict[str, Any], *,
                        keep: timedelta = SNAPSHOT_KEEP) -> None:
        """Store ``endpoint``'s counters as seen at ``taken_at``, and forget its snapshots
        taken more than ``keep`` before that (in the same transaction)."""
        validate_name(endpoint, "endpoint name")
        at = _utc(taken_at)
        t = counter_snapshots
        with self.store.writing() as conn:
            conn.execute(sa.insert(t).values(endpoint=endpoint, taken_at=at, stats=stats))
            conn.execute(sa.delete(t).where(t.c.endpoint == endpoint,
                                            t.c.taken_at < at - keep))

    def counters_at(self, endpoint: str, at: datetime) -> tuple[datetime, dict[str, Any]] | None:
        """The newest snapshot of ``endpoint`` taken at or before ``at``, else its oldest
        one (a window longer than what was watched); None when there is none."""
        t = counter_snapshots
        base = sa.select(t.c.taken_at, t.c.stats).where(t.c.endpoint == endpoint).limit(1)
        with self.store.reading() as conn:
            row = conn.execute(base.where(t.c.taken_at <= _utc(at))
                               .order_by(t.c.taken_at.desc(), t.c.id.desc())).first()
            if row is None:
                row = conn.execute(base.order_by(t.c.taken_at, t.c.id)).first()
        if row is None:
            return None
        return as_utc(row.taken_at), dict(row.stats)  # type: ignore[return-value]


def _utc(value: datetime) -> datetime:
    # SQLite keeps the wall-clock digits and drops the offset: store UTC only, so that
    # comparing the stored text compares the instants.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


__all__ = ["SNAPSHOT_KEEP", "STATES", "Alert", "AlertStore"]
