"""Alias rows inside a caller's write transaction: point, remove, drop, and their events.

Every move of an alias (set, removed, dropped with its version or model) leaves an
``alias_events`` row and an audit record in the transaction that made it, so the alias
history and the audit log can never disagree with the aliases themselves.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelport.registry import audit
from modelport.registry.entities import AliasEvent
from modelport.registry.schema import alias_events, model_aliases
from modelport.registry.times import as_utc, utcnow


def version_of(conn: Connection, model_id: int, alias: str) -> int | None:
    """The version ``alias`` points at, or None."""
    return conn.execute(
        sa.select(model_aliases.c.version).where(
            model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
        )
    ).scalar()


def point(conn: Connection, model_id: int, name: str, alias: str, version: int, actor: str,
          reason: str) -> AliasEvent:
    """Point ``alias`` at ``version`` (validated by the caller); pointing it where it
    already points records nothing and returns its last move."""
    current = version_of(conn, model_id, alias)
    now = utcnow()
    if current is None:
        conn.execute(sa.insert(model_aliases).values(
            model_id=model_id, alias=alias, version=version, updated_at=now, updated_by=actor))
    elif current != version:
        conn.execute(
            sa.update(model_aliases)
            .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
            .values(version=version, updated_at=now, updated_by=actor)
        )
    else:
        last = events(conn, model_id, name, alias)
        if last:
            return last[-1]
    return record(conn, model_id, name, alias, current, version, actor, reason, now)


def remove(conn: Connection, model_id: int, name: str, alias: str, actor: str, reason: str,
           at: datetime) -> AliasEvent | None:
    """Remove ``alias`` and record it; None if the model has no such alias."""
    current = version_of(conn, model_id, alias)
    if current is None:
        return None
    conn.execute(sa.delete(model_aliases).where(
        model_aliases.c.model_id == model_id, model_aliases.c.alias == alias))
    return record(conn, model_id, name, alias, current, None, actor, reason, at)


def drop(conn: Connection, model_id: int, name: str, actor: str, reason: str, at: datetime,
         version: int | None = None) -> None:
    """Remove every alias of the model (or those on ``version``), each recorded."""
    q = sa.select(model_aliases.c.alias, model_aliases.c.version).where(
        model_aliases.c.model_id == model_id)
    if version is not None:
        q = q.where(model_aliases.c.version == version)
    for alias, ver in list(conn.execute(q)):
        conn.execute(sa.delete(model_aliases).where(
            model_aliases.c.model_id == model_id, model_aliases.c.alias == alias))
        record(conn, model_id, name, alias, ver, None, actor, reason, at)


def events(conn: Connection, model_id: int, name: str, alias: str | None) -> list[AliasEvent]:
    """Every move of ``alias`` (or of all the model's aliases), oldest first."""
    q = sa.select(alias_events).where(alias_events.c.model_id == model_id)
    if alias is not None:
        q = q.where(alias_events.c.alias == alias)
    return [
        AliasEvent(
            id=r["id"], name=name, alias=r["alias"], from_version=r["from_version"],
            to_version=r["to_version"], actor=r["actor"], reason=r["reason"],
            at=as_utc(r["at"]),  # type: ignore[arg-type]
        )
        for r in conn.execute(q.order_by(alias_events.c.id)).mappings()
    ]


def record(conn: Connection, model_id: int, name: str, alias: str, from_version: int | None,
           to_version: int | None, actor: str, reason: str, at: datetime) -> AliasEvent:
    """Append one alias move to its history and to the audit log."""
    event_id = conn.execute(
        sa.insert(alias_events)
        .values(model_id=model_id, alias=alias, from_version=from_version,
                to_version=to_version, actor=actor, reason=reason, at=at)
        .returning(alias_events.c.id)
    ).scalar_one()
    audit.append(conn, actor=actor,
                 action=audit.ALIAS_SET if to_version is not None else audit.ALIAS_DELETE,
                 target=f"{name}@{alias}", model=name,
                 before=None if from_version is None else {"version": from_version},
                 after=None if to_version is None else {"version": to_version},
                 reason=reason)
    return AliasEvent(event_id, name, alias, from_version, to_version, actor, reason, at)


__all__ = ["drop", "events", "point", "record", "remove", "version_of"]
