"""Which version(s) an endpoint served at a given time, from the audit log.

The answer comes from the newest desired-state record of the deployment named like the
endpoint at or before that time: its stable version, and its candidate with its traffic
share while a rollout ran. An endpoint served by alias without a deployment falls back
to the newest move of ``ENDPOINT@ALIAS``. It is the desired state: servers converge to
it within their poll interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelport.errors import InvalidInputError, NotFoundError
from modelport.registry.audit import (
    ALIAS_DELETE,
    ALIAS_SET,
    DESIRED_STATE_FAMILIES,
    action_filter,
    to_record,
)
from modelport.registry.entities import AuditRecord
from modelport.registry.schema import audit_log
from modelport.uri import validate_alias, validate_name


@dataclass(frozen=True)
class ServedVersion:
    """One version taking part: its role, its share of answers (percent) and mode."""

    version: int
    role: str  # stable | candidate
    traffic: float
    mode: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"version": self.version, "role": self.role, "traffic": self.traffic,
                "mode": self.mode}


@dataclass(frozen=True)
class Served:
    """The answer of ``audit at``: what served ``endpoint`` at ``at``, and the record
    (``source`` ``deployment`` or ``alias``) that says so."""

    endpoint: str
    at: datetime
    source: str
    model: str
    versions: tuple[ServedVersion, ...]
    record: AuditRecord
    rollout_id: int | None = None

    def sentence(self) -> str:
        """The answer in one sentence (times in UTC)."""
        when = f"{self.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        r = self.record
        why = (f"(audit record seq {r.seq}: {r.action} by {r.actor} at "
               f"{r.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)")
        if self.source == "alias":
            alias = r.target.partition("@")[2]
            if not self.versions:
                return (f"At {when}, {self.endpoint} had no deployment and its alias {alias!r} "
                        f"had been removed {why}.")
            return (f"At {when}, {self.endpoint} had no deployment; {r.target} pointed to "
                    f"{self.model}/{self.versions[0].version} {why}.")
        if not self.versions:
            return f"At {when}, {self.endpoint} had no stable version to serve {why}."
        parts = [self._part(v) for v in self.versions]
        during = f", during rollout #{self.rollout_id}" if self.rollout_id is not None else ""
        return f"At {when}, {self.endpoint} served {' and '.join(parts)}{during} {why}."

    def _part(self, v: ServedVersion) -> str:
        name = f"{self.model}/{v.version}"
        if v.role == "stable":
            share = "all traffic" if v.traffic >= 100 else f"{v.traffic:g}% of traffic"
            return f"{name} ({share})"
        if v.mode == "shadow":
            return f"candidate {name} in shadow (a copy of each request, answers discarded)"
        return f"candidate {name} ({v.traffic:g}% of traffic, {v.mode})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``audit at --json`` answer)."""
        return {"endpoint": self.endpoint, "at": self.at.isoformat(), "source": self.source,
                "model": self.model, "versions": [v.to_dict() for v in self.versions],
                "rollout_id": self.rollout_id, "record": self.record.to_dict(),
                "sentence": self.sentence()}


def versions_of(state: dict[str, Any]) -> tuple[ServedVersion, ...]:
    """Who answers, by a deployment's desired state (stable, candidate, mode, weight)."""
    stable, candidate = state.get("stable"), state.get("candidate")
    mode, weight = state.get("mode"), float(state.get("weight") or 0.0)
    if stable is None and candidate is None:
        return ()
    if candidate is None or mode is None:
        return (ServedVersion(int(stable), "stable", 100.0),) if stable is not None else ()
    share = 0.0 if mode == "shadow" else weight
    out = [ServedVersion(int(candidate), "candidate", share, mode)]
    if stable is not None:
        out.insert(0, ServedVersion(int(stable), "stable", 100.0 - share))
    return tuple(out)


def served_at(conn: Connection, endpoint: str, when: datetime, *,
              alias: str = "champion") -> Served:
    """What ``endpoint`` served at ``when`` (aware); NotFoundError when the log has no
    record of it by then."""
    validate_name(endpoint, "endpoint name")
    validate_alias(alias)
    if when.tzinfo is None:
        raise InvalidInputError("the time must carry a zone (the CLI reads local time)")
    # SQLite compares the stored UTC text: the bound time must be UTC as well.
    utc = when.astimezone(UTC)
    state_q = (sa.select(audit_log)
               .where(audit_log.c.target == endpoint, audit_log.c.at <= utc,
                      sa.or_(*(action_filter(f) for f in DESIRED_STATE_FAMILIES)))
               .order_by(audit_log.c.seq.desc()).limit(1))
    row = conn.execute(state_q).mappings().first()
    if row is not None:
        rec = to_record(row)
        state = rec.after or {}
        rollout = state.get("rollout") or {}
        return Served(endpoint, when, "deployment", str(state.get("model") or rec.model),
                      versions_of(state), rec,
                      rollout.get("id") if state.get("candidate") is not None else None)
    target = f"{endpoint}@{alias}"
    alias_q = (sa.select(audit_log)
               .where(audit_log.c.target == target, audit_log.c.at <= utc,
                      audit_log.c.action.in_((ALIAS_SET, ALIAS_DELETE)))
               .order_by(audit_log.c.seq.desc()).limit(1))
    row = conn.execute(alias_q).mappings().first()
    if row is None:
        raise NotFoundError(
            f"the audit log has no record of what {endpoint!r} served at "
            f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: no deployment {endpoint!r} and "
            f"no move of {target} by then")
    rec = to_record(row)
    version = (rec.after or {}).get("version")
    versions = (ServedVersion(int(version), "stable", 100.0),) if version is not None else ()
    return Served(endpoint, when, "alias", rec.model or endpoint, versions, rec)


__all__ = ["Served", "ServedVersion", "served_at", "versions_of"]
