"""What the delivery stages record beside the versions: gate results, pipeline runs,
servers' traffic counters, and leases (who may act alone, such as the one controller).

The registry stores these and guards their keys; it does not interpret them (the
traffic counters' layout belongs to ``modelport.registry.traffic``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from modelport.errors import InvalidInputError, NotFoundError
from modelport.registry import audit
from modelport.registry.entities import GateResult, PipelineRun, TrafficReport
from modelport.registry.schema import gate_results, leases, pipeline_runs, traffic_stats
from modelport.registry.store import SqlRegistryStore
from modelport.registry.times import as_utc, utcnow
from modelport.uri import validate_name


def _gate(r: RowMapping) -> GateResult:
    return GateResult(
        id=r["id"], model_name=r["model_name"], version=r["version"], passed=bool(r["passed"]),
        against=r["against"], report=dict(r["report"] or {}),
        created_at=as_utc(r["created_at"]),  # type: ignore[arg-type]
        created_by=r["created_by"],
    )


def _run(r: RowMapping) -> PipelineRun:
    return PipelineRun(
        id=r["id"], pipeline=r["pipeline"], status=r["status"], git_commit=r["git_commit"],
        steps=list(r["steps"] or []),
        started_at=as_utc(r["started_at"]),  # type: ignore[arg-type]
        finished_at=as_utc(r["finished_at"]), actor=r["actor"],
    )


class RecordStore:
    """Gate results, pipeline runs, traffic counters and leases."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self.store = store

    # -- gates --------------------------------------------------------------------------

    def record_gate(self, model_name: str, version: int, *, passed: bool,
                    against: int | None, report: dict[str, Any], actor: str) -> GateResult:
        """Store a gate's outcome with the version it judged (which must exist)."""
        now = utcnow()
        with self.store.writing() as conn:
            model = self.store._model_row(conn, model_name)
            self.store._version_row(conn, model["id"], model_name, version)
            gate_id = conn.execute(sa.insert(gate_results).values(
                model_name=model_name, version=version, passed=passed, against=against,
                report=report, created_at=now, created_by=actor,
            ).returning(gate_results.c.id)).scalar_one()
            # A passed gate is what lets a rollout with --require-gate start.
            audit.append(conn, actor=actor, action=audit.GATE_RECORD,
                         target=f"{model_name}/{version}", model=model_name,
                         after={"gate_id": gate_id, "passed": passed, "against": against})
        return GateResult(gate_id, model_name, version, passed, against, report, now, actor)

    def gate_results(self, model_name: str, version: int | None = None) -> list[GateResult]:
        """Gate outcomes of a model (or one version), oldest first."""
        validate_name(model_name)
        q = sa.select(gate_results).where(gate_results.c.model_name == model_name)
        if version is not None:
            q = q.where(gate_results.c.version == version)
        with self.store.reading() as conn:
            return [_gate(r) for r in conn.execute(q.order_by(gate_results.c.id)).mappings()]

    def latest_gate(self, model_name: str, version: int) -> GateResult | None:
        """The newest gate outcome of one version, or None if it was never gated."""
        results = self.gate_results(model_name, version)
        return results[-1] if results else None

    # -- pipeline runs ------------------------------------------------------------------

    def save_pipeline_run(self, run: PipelineRun) -> PipelineRun:
        """Insert or update a run (a runner saves it as each step ends)."""
        values = {"pipeline": run.pipeline, "status": run.status, "git_commit": run.git_commit,
                  "steps": list(run.steps), "started_at": run.started_at,
                  "finished_at": run.finished_at, "actor": run.actor}
        with self.store.writing() as conn:
            done = conn.execute(sa.update(pipeline_runs).where(pipeline_runs.c.id == run.id)
                                .values(**values)).rowcount
            if not done:
                conn.execute(sa.insert(pipeline_runs).values(id=run.id, **values))
        return run

    def pipeline_run(self, run_id: str) -> PipelineRun:
        """One run by id (404 if none)."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(pipeline_runs).where(pipeline_runs.c.id == run_id)
                               ).mappings().first()
        if row is None:
            raise NotFoundError(f"no pipeline run {run_id!r}")
        return _run(row)

    def pipeline_runs(self, pipeline: str | None = None, *, limit: int = 50) -> list[PipelineRun]:
        """The newest runs first (of one pipeline if named)."""
        q = sa.select(pipeline_runs).order_by(pipeline_runs.c.started_at.desc()).limit(limit)
        if pipeline is not None:
            q = q.where(pipeline_runs.c.pipeline == pipeline)
        with self.store.reading() as conn:
            return [_run(r) for r in conn.execute(q).mappings()]

    # -- traffic counters ---------------------------------------------------------------

    def report_traffic(self, server_id: str, deployment: str,
                       stats: Mapping[int, dict[str, Any]]) -> None:
        """Store one server's cumulative counters for each version of a deployment."""
        if not stats:
            return
        now = utcnow()
        t = traffic_stats
        with self.store.writing() as conn:
            for version, data in stats.items():
                done = conn.execute(sa.update(t).where(
                    t.c.server_id == server_id, t.c.deployment == deployment,
                    t.c.version == version).values(stats=data, updated_at=now)).rowcount
                if not done:
                    conn.execute(sa.insert(t).values(
                        server_id=server_id, deployment=deployment, version=version,
                        stats=data, updated_at=now))

    def traffic(self, deployment: str) -> list[TrafficReport]:
        """Every server's counters for ``deployment`` (sum them to see the whole fleet)."""
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(traffic_stats).where(
                traffic_stats.c.deployment == deployment)).mappings()
            return [TrafficReport(r["server_id"], r["deployment"], r["version"],
                                  dict(r["stats"]), as_utc(r["updated_at"]))  # type: ignore[arg-type]
                    for r in rows]

    def prune_traffic(self, older_than: timedelta) -> int:
        """Forget counters not updated for ``older_than`` (servers long gone)."""
        with self.store.writing() as conn:
            return int(conn.execute(sa.delete(traffic_stats).where(
                traffic_stats.c.updated_at < utcnow() - older_than)).rowcount)

    # -- leases -------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew lease ``name`` for ``ttl`` seconds; False if another holds it."""
        if ttl <= 0:
            raise InvalidInputError("a lease needs a positive ttl")
        now = utcnow()
        expires = now + timedelta(seconds=ttl)
        with self.store.writing() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.name == name)
                               .with_for_update()).mappings().first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(leases).values(
                            name=name, holder=holder, expires_at=expires, acquired_at=now))
                except sa.exc.IntegrityError:
                    return False  # someone else inserted it first
                return True
            mine = row["holder"] == holder
            if not mine and as_utc(row["expires_at"]) > now:  # type: ignore[operator]
                return False
            conn.execute(sa.update(leases).where(leases.c.name == name).values(
                holder=holder, expires_at=expires,
                acquired_at=row["acquired_at"] if mine else now))
            return True

    def release_lease(self, name: str, holder: str) -> None:
        """Give lease ``name`` up, if ``holder`` holds it."""
        with self.store.writing() as conn:
            conn.execute(sa.delete(leases).where(leases.c.name == name,
                                                 leases.c.holder == holder))

    def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        """Who holds lease ``name`` and until when, or None if nobody does."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.name == name)).mappings().first()
        if row is None or as_utc(row["expires_at"]) <= utcnow():  # type: ignore[operator]
            return None
        return row["holder"], as_utc(row["expires_at"])  # type: ignore[return-value]


__all__ = ["RecordStore"]
