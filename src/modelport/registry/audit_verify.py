"""Verifying the audit log: one walk over the chain, naming every record that broke it.

Each record is checked on its own (its hash over its content, sequence number included)
and against its neighbour (its ``prev_hash`` is the hash of the record before; the
sequence has no gap); the last one against the head row. A record whose content fails
but would pass under another sequence number that is itself broken or missing was moved
(reordered), not edited.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from modelport.registry.audit import GENESIS, HEAD_ID, chain_hash, hashed_fields
from modelport.registry.schema import audit_head, audit_log

BATCH = 1000
MAX_KEPT = 1000  # broken records kept for the reorder test; more is not a subtle edit

EDITED, REORDERED, MISSING, REPLACED, TRUNCATED, EXTRA, HEAD = (
    "edited", "reordered", "missing", "replaced", "truncated", "extra", "head")


@dataclass(frozen=True)
class AuditProblem:
    """One break in the chain: its kind, the record it names, and a sentence."""

    kind: str
    seq: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"kind": self.kind, "seq": self.seq, "message": self.message}


@dataclass(frozen=True)
class AuditVerification:
    """What ``verify`` found: intact, or every problem in chain order (first first)."""

    records: int
    head_count: int | None
    head_hash: str | None
    problems: tuple[AuditProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the chain is intact."""
        return not self.problems

    @property
    def problem(self) -> AuditProblem | None:
        """The first problem along the chain, if any."""
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"ok": self.ok, "records": self.records, "head_count": self.head_count,
                "head_hash": self.head_hash, "problems": [p.to_dict() for p in self.problems]}


@dataclass
class _Walk:
    """What one pass over the rows collects."""

    records: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    broken: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> row
    missing: list[tuple[int, int]] = field(default_factory=list)  # (first, last) gaps
    problems: list[AuditProblem] = field(default_factory=list)


def _rows(conn: Connection) -> Iterator[RowMapping]:
    after = None
    while True:
        q = sa.select(audit_log).order_by(audit_log.c.seq).limit(BATCH)
        if after is not None:
            q = q.where(audit_log.c.seq > after)
        batch = list(conn.execute(q).mappings())
        yield from batch
        if len(batch) < BATCH:
            return
        after = batch[-1]["seq"]


def _step(walk: _Walk, row: RowMapping, prev_ok: bool) -> bool:
    """Check one row against itself and the row before; whether it is self-consistent."""
    seq = row["seq"]
    walk.records += 1
    ok = chain_hash(hashed_fields(row)) == row["hash"]
    if not ok and len(walk.broken) < MAX_KEPT:
        walk.broken[seq] = dict(row)
    expected = walk.last_seq + 1
    if seq > expected:
        walk.missing.append((expected, seq - 1))
        which = (f"record seq {expected} is" if seq - 1 == expected
                 else f"records seq {expected}-{seq - 1} are")
        after = f"seq {walk.last_seq} is followed by" if walk.last_seq else "the log starts at"
        walk.problems.append(AuditProblem(MISSING, expected,
                                          f"{which} missing (deleted): {after} seq {seq}"))
    elif ok and prev_ok and row["prev_hash"] != walk.last_hash:
        if walk.last_seq:
            walk.problems.append(AuditProblem(
                REPLACED, walk.last_seq,
                f"record seq {walk.last_seq} was replaced: seq {seq} does not chain from it "
                "(prev_hash mismatch)"))
        else:
            walk.problems.append(AuditProblem(
                REPLACED, seq, f"record seq {seq} was replaced: it does not start the chain "
                               "(prev_hash is not the genesis hash)"))
    walk.last_seq, walk.last_hash = seq, row["hash"]
    return ok


def _classify(walk: _Walk) -> None:
    """Name each self-inconsistent record: moved from another seq, or edited."""
    candidates = set(walk.broken)
    for first, last in walk.missing:
        candidates.update(range(first, min(last, first + MAX_KEPT) + 1))
    for seq, row in walk.broken.items():
        moved = next((s for s in sorted(candidates - {seq})
                      if chain_hash(hashed_fields(row, seq=s)) == row["hash"]), None)
        if moved is not None:
            walk.problems.append(AuditProblem(
                REORDERED, seq,
                f"records reordered: the record at seq {seq} was written as seq {moved}"))
        else:
            walk.problems.append(AuditProblem(
                EDITED, seq, f"record seq {seq} was edited: its content no longer matches "
                             "its hash"))


def _check_head(walk: _Walk, head: RowMapping | None) -> None:
    if head is None:
        walk.problems.append(AuditProblem(HEAD, None, "the audit head row is missing "
                                                      "(deleted)"))
        return
    count, last = head["count"], walk.last_seq
    if count > last:
        which = (f"record seq {count} is" if count == last + 1
                 else f"records seq {last + 1}-{count} are")
        walk.problems.append(AuditProblem(
            TRUNCATED, last + 1,
            f"the log was truncated: {which} missing (deleted); the head records {count} "
            f"records, the log ends at seq {last}"))
    elif count < last:
        walk.problems.append(AuditProblem(
            EXTRA, count + 1,
            f"record seq {count + 1} was added behind the head's back: the head records "
            f"{count} records, the log ends at seq {last}"))
    elif head["hash"] != walk.last_hash and last not in walk.broken:
        walk.problems.append(AuditProblem(
            REPLACED, last, f"record seq {last} was replaced: it does not match the head's "
                            "hash"))


def verify(conn: Connection) -> AuditVerification:
    """Walk the chain in ``conn``'s snapshot; every problem, in chain order."""
    head = conn.execute(sa.select(audit_head.c.count, audit_head.c.hash)
                        .where(audit_head.c.id == HEAD_ID)).mappings().first()
    walk = _Walk()
    prev_ok = True
    for row in _rows(conn):
        prev_ok = _step(walk, row, prev_ok)
    _classify(walk)
    _check_head(walk, head)
    problems = sorted(walk.problems, key=lambda p: (p.seq is not None, p.seq or 0))
    return AuditVerification(
        records=walk.records, head_count=None if head is None else head["count"],
        head_hash=None if head is None else head["hash"], problems=tuple(problems))


__all__ = ["AuditProblem", "AuditVerification", "verify"]
