"""Retraining history: each trigger, skip and outcome as a record of the audit log.

No table of its own: the audit log already is append-only, hash-chained and indexed by
target, which is all this history needs (so no migration). Every record has target =
the endpoint, actor = ``modelport-retrain`` and one of four actions:

- ``retrain.trigger``: a pipeline run started (``after``: rule, alert, pipeline, rows,
  window, data file, run id); its record's ``seq`` is the trigger's id, and its time
  starts the endpoint's cool-down;
- ``retrain.skip``: an alert fired but nothing ran (``reason``: cool-down, already
  running, no labelled rows);
- ``retrain.succeed`` / ``retrain.fail``: how the run of trigger ``after.trigger``
  ended (new version, rollout id / exit code, with the reason).

The registry stores and reads them; deciding when to trigger belongs to
``modelport.retraining``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from modelport.errors import InvalidInputError
from modelport.registry import audit
from modelport.registry.entities import AuditRecord
from modelport.registry.schema import deployments
from modelport.registry.store import SqlRegistryStore
from modelport.uri import validate_name

ACTOR = "modelport-retrain"
TRIGGER = "retrain.trigger"
SKIP = "retrain.skip"
SUCCEED = "retrain.succeed"
FAIL = "retrain.fail"
FAMILY = "retrain"
STATUSES = ("running", "succeeded", "failed", "skipped")


@dataclass(frozen=True)
class Retrain:
    """One alert's retraining: a trigger (running, then succeeded or failed) or a skip."""

    id: int  # seq of its trigger (or skip) record in the audit log
    endpoint: str
    status: str
    at: datetime
    rule: str
    alert_id: int | None
    pipeline: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)  # the trigger's, then the outcome's
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601)."""
        return {"id": self.id, "endpoint": self.endpoint, "status": self.status,
                "at": self.at.isoformat(), "rule": self.rule, "alert_id": self.alert_id,
                "pipeline": self.pipeline, "reason": self.reason, "details": self.details,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


def _entry(record: AuditRecord) -> Retrain:
    after = dict(record.after or {})
    status = "skipped" if record.action == SKIP else "running"
    return Retrain(id=record.seq, endpoint=record.target, status=status, at=record.at,
                   rule=str(after.pop("rule", "")), alert_id=after.pop("alert_id", None),
                   pipeline=str(after.pop("pipeline", "")), reason=record.reason,
                   details=after)


class RetrainStore:
    """Writes and reads the retraining records of the audit log."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self.store = store

    def record_trigger(self, endpoint: str, *, rule: str, alert_id: int | None,
                       pipeline: str, reason: str, details: dict[str, Any]) -> Retrain:
        """A run is starting: its trigger record (whose time starts the cool-down)."""
        return _entry(self._append(TRIGGER, endpoint, reason, {
            "rule": rule, "alert_id": alert_id, "pipeline": pipeline, **details}))

    def record_skip(self, endpoint: str, *, rule: str, alert_id: int | None, pipeline: str,
                    reason: str, details: dict[str, Any] | None = None) -> Retrain:
        """An alert fired and nothing ran, and why."""
        return _entry(self._append(SKIP, endpoint, reason, {
            "rule": rule, "alert_id": alert_id, "pipeline": pipeline, **(details or {})}))

    def record_outcome(self, trigger: Retrain, *, succeeded: bool, reason: str,
                       details: dict[str, Any]) -> Retrain:
        """How the run of ``trigger`` ended; returns the trigger as it now stands."""
        record = self._append(SUCCEED if succeeded else FAIL, trigger.endpoint, reason,
                              {"trigger": trigger.id, **details})
        return _finished(trigger, record)

    def last_trigger(self, endpoint: str) -> Retrain | None:
        """The endpoint's newest trigger (what its cool-down counts from), if any."""
        found = self._list(action=TRIGGER, target=validate_name(endpoint, "endpoint name"),
                                limit=1)
        return _entry(found[-1]) if found else None

    def history(self, endpoint: str | None = None, *, limit: int = 50) -> list[Retrain]:
        """Triggers (with their outcome) and skips, newest first."""
        if limit < 1:
            raise InvalidInputError(f"limit must be at least 1, got {limit}")
        target = None if endpoint is None else validate_name(endpoint, "endpoint name")
        # An outcome is newer than its trigger, so the newest records hold the outcome of
        # every trigger among them; each entry has at most two records.
        records = self._list(action=FAMILY, target=target, limit=2 * limit)
        entries: dict[int, Retrain] = {}
        for record in records:
            if record.action in (TRIGGER, SKIP):
                entries[record.seq] = _entry(record)
            elif record.action in (SUCCEED, FAIL):
                trigger = (record.after or {}).get("trigger")
                if trigger in entries:
                    entries[trigger] = _finished(entries[trigger], record)
        return sorted(entries.values(), key=lambda e: e.id, reverse=True)[:limit]

    def _list(self, *, action: str, target: str | None, limit: int) -> list[AuditRecord]:
        """The newest ``limit`` audit records of ``action`` (or family), oldest first."""
        return audit.AuditStore(self.store).list(action=action, target=target, limit=limit)

    def _append(self, action: str, endpoint: str, reason: str,
                after: dict[str, Any]) -> AuditRecord:
        validate_name(endpoint, "endpoint name")
        with self.store.writing() as conn:
            model = conn.execute(sa.select(deployments.c.model_name).where(
                deployments.c.name == endpoint)).scalar()
            return audit.append(conn, actor=ACTOR, action=action, target=endpoint,
                                model=model, after=after, reason=reason)


def _finished(trigger: Retrain, record: AuditRecord) -> Retrain:
    details = {**trigger.details, **{k: v for k, v in (record.after or {}).items()
                                     if k != "trigger"}}
    return Retrain(id=trigger.id, endpoint=trigger.endpoint,
                   status="succeeded" if record.action == SUCCEED else "failed",
                   at=trigger.at, rule=trigger.rule, alert_id=trigger.alert_id,
                   pipeline=trigger.pipeline, reason=record.reason, details=details,
                   finished_at=record.at)


__all__ = ["ACTOR", "FAIL", "FAMILY", "SKIP", "STATUSES", "SUCCEED", "TRIGGER", "Retrain",
           "RetrainStore"]
