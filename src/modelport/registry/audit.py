"""The audit log: every mutation of the registry as an append-only, hash-chained record.

Each record holds who (actor), when, what (action), to what (target), the state before
and after, and why; its hash covers all of that plus its sequence number and the hash
of the record before it, so editing, deleting or reordering a record breaks the chain
(``verify`` says where). A one-row head holds the record count and the newest hash, so
even deleting the last record shows.

Stores call :func:`append` inside the transaction of the mutation it describes: a
mutation that fails leaves no record, and none lands without one. The head row's lock
(``FOR UPDATE`` on PostgreSQL; SQLite writers already hold the database's write lock)
makes concurrent appenders take turns, so two never chain off the same record.

Action names are plain strings; the registry's own are defined here. Other layers
(tokens, say) pass their own, ``token.create``, through the same ``append``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from modelport.errors import AuditChainError, InvalidInputError
from modelport.registry.entities import AuditRecord
from modelport.registry.schema import audit_head, audit_log
from modelport.registry.times import as_utc, utcnow

if TYPE_CHECKING:  # the stores import this module to append; it needs them only for types
    from modelport.registry.audit_served import Served
    from modelport.registry.audit_verify import AuditVerification
    from modelport.registry.store import SqlRegistryStore

GENESIS = "0" * 64  # the previous hash of the first record
HEAD_ID = 1

VERSION_REGISTER = "version.register"
VERSION_DELETE = "version.delete"
VERSION_SIGN = "version.sign"  # a signature added to (or replaced on) a version later
MODEL_UPDATE = "model.update"
MODEL_DELETE = "model.delete"
ALIAS_SET = "alias.set"
ALIAS_DELETE = "alias.delete"
DEPLOYMENT_CREATE = "deployment.create"
DEPLOYMENT_UPDATE = "deployment.update"
GATE_RECORD = "gate.record"
ALERT_ACTION = "alert.action"
DATASET_REGISTER = "dataset.register"
# Action names, not secrets (the tokens' own audit actions, for the token commands).
TOKEN_CREATE = "token.create"  # noqa: S105
TOKEN_REVOKE = "token.revoke"  # noqa: S105

# A deployment event's kind -> its audit action. Kinds not listed are recorded as
# DEPLOYMENT_UPDATE, the kind itself kept in the record's ``after``.
DEPLOYMENT_ACTIONS = {
    "created": DEPLOYMENT_CREATE,
    "rollback": "deployment.rollback",
    "rollout_started": "rollout.start",
    "step_started": "rollout.step",
    "promoted": "rollout.promote",
    "aborted": "rollout.abort",
    "rolled_back": "rollout.rollback",
    "failed": "rollout.fail",
    "paused": "rollout.pause",
    "resumed": "rollout.resume",
}
# The families whose records carry a deployment's desired state in ``after``.
DESIRED_STATE_FAMILIES = ("deployment", "rollout")

_MAX = {"actor": 128, "action": 64, "target": 300, "model": 128}


def deployment_action(kind: str) -> str:
    """The audit action of a deployment event of this kind."""
    return DEPLOYMENT_ACTIONS.get(kind, DEPLOYMENT_UPDATE)


def to_json(value: Any) -> str | None:
    """The canonical JSON text of ``value`` (sorted keys), or None for None."""
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
                            | orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError as exc:
        raise InvalidInputError(f"an audit record's state must be JSON: {exc}") from exc


def chain_hash(fields: dict[str, Any]) -> str:
    """sha256 of the canonical serialisation (orjson, sorted keys) of a record's fields:
    seq, at, actor, action, target, model, before, after, reason, prev_hash."""
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def hashed_fields(row: RowMapping | dict[str, Any], seq: int | None = None) -> dict[str, Any]:
    """What a record's hash covers, from a stored row (optionally as if at ``seq``)."""
    at = as_utc(row["at"])
    assert at is not None
    return {
        "seq": row["seq"] if seq is None else seq,
        # Always UTC with microseconds: both databases hand back the same instant.
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": row["actor"], "action": row["action"], "target": row["target"],
        "model": row["model"], "before": row["before"], "after": row["after"],
        "reason": row["reason"], "prev_hash": row["prev_hash"],
    }


def append(conn: Connection, *, actor: str, action: str, target: str,
           model: str | None = None, before: Any = None, after: Any = None,
           reason: str = "") -> AuditRecord:
    """Append one record in the caller's write transaction and return it.

    Raises AuditChainError when the head row is gone (the log was tampered with):
    appending would chain from nothing, so the mutation fails instead.
    """
    for key, value in (("actor", actor), ("action", action), ("target", target),
                       ("model", model)):
        if value is not None and (len(value) > _MAX[key] or (not value and key != "model")):
            raise InvalidInputError(f"audit {key} must be 1-{_MAX[key]} characters: {value!r}")
    head = conn.execute(sa.select(audit_head.c.count, audit_head.c.hash)
                        .where(audit_head.c.id == HEAD_ID).with_for_update()).mappings().first()
    if head is None:
        raise AuditChainError("the audit log's head row is missing, so the log was tampered "
                              "with; nothing is changed until it is repaired "
                              "(modelport audit verify)")
    # The time is taken under the head's lock, so times never go back along the chain
    # (on one clock).
    row: dict[str, Any] = {
        "seq": head["count"] + 1, "at": utcnow(), "actor": actor, "action": action,
        "target": target, "model": model, "before": to_json(before), "after": to_json(after),
        "reason": reason, "prev_hash": head["hash"],
    }
    row["hash"] = chain_hash(hashed_fields(row))
    conn.execute(sa.insert(audit_log).values(**row))
    conn.execute(sa.update(audit_head).where(audit_head.c.id == HEAD_ID)
                 .values(count=row["seq"], hash=row["hash"]))
    return to_record(row)


def to_record(r: RowMapping | dict[str, Any]) -> AuditRecord:
    """The entity of a stored row (``before``/``after`` decoded)."""
    return AuditRecord(
        seq=r["seq"], at=as_utc(r["at"]),  # type: ignore[arg-type]
        actor=r["actor"], action=r["action"], target=r["target"], model=r["model"],
        before=None if r["before"] is None else orjson.loads(r["before"]),
        after=None if r["after"] is None else orjson.loads(r["after"]),
        reason=r["reason"], prev_hash=r["prev_hash"], hash=r["hash"],
    )


def action_filter(action: str) -> sa.ColumnElement[bool]:
    """Records of exactly ``action``, or of its family (``rollout`` -> ``rollout.*``)."""
    return sa.or_(audit_log.c.action == action,
                  audit_log.c.action.startswith(action + ".", autoescape=True))


class AuditStore:
    """Reads the audit log: lists it, verifies its chain, answers what served when."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self.store = store

    def list(self, *, model: str | None = None, action: str | None = None,
             target: str | None = None, limit: int | None = 50) -> list[AuditRecord]:
        """The newest ``limit`` records (of a model, an action or its family, a
        target), oldest first."""
        if limit is not None and limit < 1:
            raise InvalidInputError(f"limit must be at least 1, got {limit}")
        q = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
        if model is not None:
            q = q.where(audit_log.c.model == model)
        if action is not None:
            q = q.where(action_filter(action))
        if target is not None:
            q = q.where(audit_log.c.target == target)
        with self.store.reading() as conn:
            return [to_record(r) for r in conn.execute(q).mappings()][::-1]

    def head(self) -> tuple[int, str] | None:
        """(record count, newest hash) as the head row holds them; None if it is gone."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(audit_head.c.count, audit_head.c.hash)
                               .where(audit_head.c.id == HEAD_ID)).mappings().first()
        return None if row is None else (row["count"], row["hash"])

    def verify(self) -> AuditVerification:
        """Walk the whole chain; an ``AuditVerification`` naming every broken record
        (never raises for a broken chain: that is the answer, not an error)."""
        from modelport.registry.audit_verify import verify

        with self._snapshot() as conn:
            return verify(conn)

    def served_at(self, endpoint: str, when: datetime, *, alias: str = "champion") -> Served:
        """Which version(s) ``endpoint`` served at ``when``: a ``Served``."""
        from modelport.registry.audit_served import served_at

        with self.store.reading() as conn:
            return served_at(conn, endpoint, when, alias=alias)

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        # The walk reads in batches: on PostgreSQL each would otherwise see appends that
        # committed meanwhile, and the head read first would disagree with them.
        if self.store.engine.dialect.name != "postgresql":
            with self.store.reading() as conn:
                yield conn
            return
        with (self.store.engine.connect().execution_options(
                isolation_level="REPEATABLE READ") as conn, conn.begin()):
            yield conn


__all__ = [
    "ALERT_ACTION", "ALIAS_DELETE", "ALIAS_SET", "DATASET_REGISTER", "DEPLOYMENT_ACTIONS",
    "DEPLOYMENT_CREATE", "DEPLOYMENT_UPDATE", "GATE_RECORD", "GENESIS", "MODEL_DELETE",
    "MODEL_UPDATE",
    "TOKEN_CREATE", "TOKEN_REVOKE", "VERSION_DELETE", "VERSION_REGISTER", "VERSION_SIGN",
    "AuditStore",
    "append", "chain_hash", "deployment_action", "hashed_fields", "to_record",
]
