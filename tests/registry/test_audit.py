"""The audit log on SQLite and PostgreSQL: one record per mutation, none for a failed one,
every kind of tampering found and named, an intact chain under concurrent writers, and
what an endpoint served at a given time."""

from __future__ import annotations

import itertools
import multiprocessing as mp
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from modelport.client import Registry
from modelport.errors import (
    AuditChainError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    VersionNotFoundError,
)
from modelport.registry import audit, db
from modelport.registry.entities import AuditRecord, Mode
from modelport.registry.store import NewVersion, SqlRegistryStore
from modelport.rollout import moves, service
from modelport.rollout.analysis import Thresholds
from modelport.rollout.strategies import plan

DIGEST = "sha256:" + "cd" * 32
SPEC = service.AnalysisSpec(Thresholds())


def new(actor: str = "alice") -> NewVersion:
    return NewVersion(flavor="sklearn", artifact_digest=DIGEST, artifact_size=10,
                      created_by=actor)


def changes(reg: Registry, fn: Callable[[], object]) -> list[AuditRecord]:
    """The records ``fn`` appended."""
    head = reg.audit.head()
    assert head is not None
    fn()
    return [r for r in reg.audit.list(limit=None) if r.seq > head[0]]


def kinds(records: list[AuditRecord]) -> list[tuple[str, str]]:
    return [(r.action, r.target) for r in records]


@pytest.fixture
def iris(registry: Registry) -> Registry:
    """iris/1, iris/2, iris/3 registered (no artifacts: the audit needs none)."""
    for _ in range(3):
        registry.store.create_version("iris", new())
    return registry


def test_registry_mutations_write_one_record_each(iris: Registry) -> None:
    reg, store = iris, iris.store
    [rec] = changes(reg, lambda: store.create_version("iris", new("bob")))
    assert (rec.action, rec.target, rec.model, rec.actor) == ("version.register", "iris/4",
                                                              "iris", "bob")
    assert rec.before is None and rec.after["artifact_digest"] == DIGEST
    [rec] = changes(reg, lambda: reg.set_alias("iris", "champion", 1, reason="first"))
    assert (kinds([rec]), rec.before, rec.after, rec.reason, rec.actor) == (
        [("alias.set", "iris@champion")], None, {"version": 1}, "first", "tester")
    assert changes(reg, lambda: reg.set_alias("iris", "champion", 1)) == []  # no move
    [rec] = changes(reg, lambda: reg.set_alias("iris", "champion", 2, reason="better"))
    assert (rec.before, rec.after) == ({"version": 1}, {"version": 2})
    [rec] = changes(reg, lambda: store.update_model("iris", description="flowers",
                                                    actor="carol"))
    assert (rec.action, rec.actor, rec.before["description"], rec.after["description"]) == (
        "model.update", "carol", "", "flowers")
    [rec] = changes(reg, lambda: reg.delete_alias("iris", "champion", reason="oops"))
    assert (kinds([rec]), rec.before, rec.after) == ([("alias.delete", "iris@champion")],
                                                     {"version": 2}, None)
    reg.set_alias("iris", "old", 4)
    recs = changes(reg, lambda: reg.delete("iris/4", reason="bad"))
    assert kinds(recs) == [("alias.delete", "iris@old"), ("version.delete", "iris/4")]
    assert (recs[1].before, recs[1].after, recs[1].reason) == ({"deleted": False},
                                                               {"deleted": True}, "bad")
    [rec] = changes(reg, lambda: reg.records.record_gate("iris", 3, passed=True, against=2,
                                                         report={}, actor="ci"))
    assert (kinds([rec]), rec.after["passed"]) == ([("gate.record", "iris/3")], True)
    [rec] = changes(reg, lambda: reg.delete("iris"))
    assert (kinds([rec]), rec.before) == ([("model.delete", "iris")],
                                          {"deleted": False, "live_versions": [1, 2, 3]})


def test_deployment_and_rollout_moves_write_their_records(iris: Registry) -> None:
    reg, d = iris, iris.deployments
    reg.set_alias("iris", "champion", 1)
    [rec] = changes(reg, lambda: d.create("iris", "iris", 1, "alice", alias="champion"))
    assert (rec.action, rec.before, rec.after["stable"], rec.after["model"]) == (
        "deployment.create", None, 1, "iris")
    [rec] = changes(reg, lambda: d.update("iris", "alice", "deployed", previous=1))
    assert (rec.action, rec.after["kind"], rec.before["previous"], rec.after["previous"]) == (
        "deployment.update", "deployed", None, 1)
    started: list[Any] = []
    [rec] = changes(reg, lambda: started.extend(service.start(
        reg, "iris", "iris/2", plan("canary", steps="25,100", step_requests=10), SPEC,
        actor="alice")))
    rollout = started[0]
    assert (rec.action, rec.before["candidate"], rec.after["candidate"],
            rec.after["mode"]) == ("rollout.start", None, 2, "canary")
    assert rec.after["rollout"] == {"id": rollout.id, "status": "running", "step_index": 0,
                                    "strategy": "canary"}
    [rec] = changes(reg, lambda: moves.start_step(reg, rollout, 0, "ctl", datetime.now(UTC),
                                                  {}, reason="ready", metrics={}))
    assert (rec.action, rec.actor, rec.before["weight"], rec.after["weight"]) == (
        "rollout.step", "ctl", 0.0, 25.0)
    [rec] = changes(reg, lambda: service.pause(reg, "iris", actor="bob"))
    assert (rec.action, rec.before["rollout"]["status"], rec.after["rollout"]["status"]) == (
        "rollout.pause", "running", "paused")
    recs = changes(reg, lambda: service.promote(reg, "iris", actor="bob"))
    assert kinds(recs) == [("alias.set", "iris@champion"), ("rollout.promote", "iris")]
    assert (recs[1].before["stable"], recs[1].after["stable"], recs[1].after["candidate"]) == (
        1, 2, None)
    recs = changes(reg, lambda: service.rollback(reg, "iris", actor="bob", reason="pager"))
    assert kinds(recs) == [("alias.set", "iris@champion"), ("deployment.rollback", "iris")]
    assert (recs[0].after, recs[1].after["stable"], recs[1].reason) == ({"version": 1}, 1,
                                                                        "pager")
    service.start(reg, "iris", "iris/3", plan("canary", steps="50,100", step_requests=10),
                  SPEC)
    [rec] = changes(reg, lambda: service.abort(reg, "iris", reason="no"))
    assert (rec.action, rec.after["rollout"]["status"]) == ("rollout.abort", "aborted")


def test_alert_action_is_recorded_and_other_alert_changes_are_not(iris: Registry) -> None:
    reg = iris
    reg.deployments.create("iris", "iris", 1, "alice")
    now = datetime.now(UTC)
    alert = reg.alerts.open("iris", "errors", state="firing", severity="critical",
                            expr="error_rate > 1%", value=0.2, threshold=0.01,
                            message="error_rate = 0.2", now=now)
    assert changes(reg, lambda: reg.alerts.update(alert.id, value=0.3)) == []
    [rec] = changes(reg, lambda: reg.alerts.update(alert.id, action="rollback: stable is 1"))
    assert (rec.action, rec.target, rec.model, rec.actor) == ("alert.action", "iris", "iris",
                                                              "modelport-alerts")
    assert rec.after == {"alert_id": alert.id, "rule": "errors", "state": "firing",
                         "action": "rollback: stable is 1"}


def test_a_failed_mutation_writes_no_record(iris: Registry) -> None:
    reg, d = iris, iris.deployments
    reg.set_alias("iris", "champion", 1)
    d.create("iris", "iris", 1, "alice", alias="champion")
    before = reg.audit.head()
    with pytest.raises(VersionNotFoundError):
        reg.set_alias("iris", "champion", 9)
    with pytest.raises(NotFoundError):
        reg.delete_alias("iris", "nope")
    with pytest.raises(InvalidInputError):
        d.update("iris", "alice", "step", weight=150.0)
    with pytest.raises(VersionNotFoundError):
        reg.records.record_gate("iris", 9, passed=True, against=None, report={}, actor="ci")
    # Refused after the new deployment was written and audited in the same transaction:
    # both go.
    with pytest.raises(ConflictError, match="already the stable version"):
        d.start_rollout("fresh", model_name="iris", candidate=2, strategy="canary",
                        steps=[100], actor="alice", mode=Mode.CANARY, stable=2)
    assert d.find("fresh") is None
    rollout, _ = d.start_rollout("iris", model_name="iris", candidate=2, strategy="canary",
                                 steps=[50, 100], actor="alice", mode=Mode.CANARY)
    with pytest.raises(ConflictError, match="moved to step"):
        d.transition(rollout.id, "ctl", "step_started", expect_step=5,
                     deployment_changes={"weight": 50.0})
    assert reg.audit.head()[0] == before[0] + 1  # only the rollout start  # type: ignore[index]
    assert reg.audit.verify().ok


def test_without_its_head_the_log_refuses_every_mutation(iris: Registry) -> None:
    reg = iris
    with reg.store.writing() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.text("DELETE FROM audit_head"))
    with pytest.raises(AuditChainError, match="head row is missing"):
        reg.set_alias("iris", "champion", 1)
    with pytest.raises(NotFoundError):
        reg.get("iris@champion")  # the move did not land without its record
    result = reg.audit.verify()
    assert not result.ok and result.problem.kind == "head"  # type: ignore[union-attr]


# -- verification -----------------------------------------------------------------------


def _chain(reg: Registry, moves_: int = 5) -> None:
    for i in range(moves_):
        reg.set_alias("iris", "champion", i % 3 + 1, reason=f"move {i}")


def _sql(reg: Registry, *statements: str) -> None:
    with reg.store.writing() as conn:  # type: ignore[attr-defined]
        for statement in statements:
            conn.execute(sa.text(statement))


TAMPERING = {
    # name: (SQL, kind, seq named, words in the message)
    "edit": (["UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 5"],
             "edited", 5, "record seq 5 was edited"),
    "delete-middle": (["DELETE FROM audit_log WHERE seq = 5"],
                      "missing", 5, "record seq 5 is missing (deleted): seq 4 is followed "
                                    "by seq 6"),
    "delete-last": (["DELETE FROM audit_log WHERE seq = 8"],
                    "truncated", 8, "record seq 8 is missing (deleted); the head records 8"),
    "swap": (["UPDATE audit_log SET seq = -1 WHERE seq = 4",
              "UPDATE audit_log SET seq = 4 WHERE seq = 6",
              "UPDATE audit_log SET seq = 6 WHERE seq = -1"],
             "reordered", 4, "the record at seq 4 was written as seq 6"),
}


def test_an_untouched_chain_verifies(iris: Registry) -> None:
    _chain(iris)
    result = iris.audit.verify()
    records = iris.audit.list(limit=None)
    assert result.ok and result.problem is None
    assert (result.records, result.head_count, result.head_hash) == (8, 8, records[-1].hash)
    assert [r.seq for r in records] == list(range(1, 9))
    assert records[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_verify_finds_and_names_each_tampering(iris: Registry, how: str) -> None:
    _chain(iris)  # 3 registrations + 5 alias moves = seq 1-8
    sql, kind, seq, words = TAMPERING[how]
    _sql(iris, *sql)
    result = iris.audit.verify()
    assert not result.ok
    first = result.problem
    assert first is not None
    assert (first.kind, first.seq) == (kind, seq), result.problems
    assert words in first.message
    if how == "swap":  # both moved records are named
        assert [(p.kind, p.seq) for p in result.problems] == [("reordered", 4),
                                                              ("reordered", 6)]
        assert "written as seq 4" in result.problems[1].message
    else:
        assert len(result.problems) == 1, result.problems


def test_a_forged_last_record_disagrees_with_the_head(iris: Registry) -> None:
    _chain(iris, 2)
    last = iris.audit.list(limit=1)[0]
    forged = {"seq": last.seq, "at": last.at, "actor": "mallory", "action": last.action,
              "target": last.target, "model": last.model, "before": None,
              "after": '{"version":3}', "reason": "", "prev_hash": last.prev_hash}
    digest = audit.chain_hash(audit.hashed_fields(forged))
    with iris.store.writing() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory', before = NULL, "
                             "after = :after, reason = '', hash = :h WHERE seq = :s"),
                     {"after": forged["after"], "h": digest, "s": last.seq})
    result = iris.audit.verify()
    assert [(p.kind, p.seq) for p in result.problems] == [("replaced", last.seq)]
    assert "does not match the head's hash" in result.problems[0].message


# -- concurrency ------------------------------------------------------------------------

WORKERS, ROUNDS = 4, 12


def _append_many(database_url: str, worker: int, barrier: Any) -> int:
    from modelport.registry.store import SqlRegistryStore

    store = SqlRegistryStore.from_url(database_url)
    barrier.wait(60)  # start together to maximise contention on the head row
    for _ in range(ROUNDS):
        # Own model: nothing but the audit head serialises these against other workers.
        v = store.create_version(f"m{worker}", new(f"w{worker}")).version
        store.set_alias(f"m{worker}", "champion", v, f"w{worker}")
        store.create_version("shared", new(f"w{worker}"))
    store.close()
    return ROUNDS * 3


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_writers_keep_one_intact_chain(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (f"sqlite:///{tmp_path / 'r.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    SqlRegistryStore.from_url(url).close()  # migrate once up front
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(WORKERS)
        with ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
            futures = [pool.submit(_append_many, url, w, barrier) for w in range(WORKERS)]
            written = sum(f.result(timeout=240) for f in futures)
    store = SqlRegistryStore.from_url(url)
    try:
        from modelport.registry.audit import AuditStore

        log = AuditStore(store)
        result = log.verify()
        assert result.ok, result.problems
        assert result.records == written == WORKERS * ROUNDS * 3
        records = log.list(limit=None)
        assert [r.seq for r in records] == list(range(1, written + 1))
        assert len({r.prev_hash for r in records}) == written  # nobody chained off one twice
        for w in range(WORKERS):
            mine = log.list(model=f"m{w}", limit=None)
            assert len(mine) == ROUNDS * 2 and {r.actor for r in mine} == {f"w{w}"}
    finally:
        store.close()


# -- which version served when -----------------------------------------------------------


def _tick() -> datetime:
    """Now: after the record just written (its time was taken inside its transaction),
    before the next one's."""
    return datetime.now(UTC)


def test_served_at_follows_alias_moves_then_the_deployment(iris: Registry) -> None:
    reg, moments = iris, {}
    moments["before"] = _tick()
    reg.set_alias("iris", "champion", 1)
    moments["alias 1"] = _tick()
    reg.set_alias("iris", "champion", 2)
    moments["alias 2"] = _tick()
    rollout, _ = service.start(reg, "iris", "iris/3",
                               plan("canary", steps="25,100", step_requests=10), SPEC)
    moments["warming"] = _tick()
    moves.start_step(reg, rollout, 0, "ctl", datetime.now(UTC), {}, reason="ready",
                     metrics={})
    moments["canary 25"] = _tick()
    service.promote(reg, "iris")
    moments["promoted"] = _tick()
    service.rollback(reg, "iris", reason="pager")
    moments["rolled back"] = _tick()
    shadow, _ = service.start(reg, "iris", "iris/3", plan("shadow", step_requests=10), SPEC)
    moves.start_step(reg, shadow, 0, "ctl", datetime.now(UTC), {}, reason="ready",
                     metrics={})
    moments["shadow"] = _tick()

    def answer(moment: str) -> tuple[str, list[tuple[int, str, float, str | None]]]:
        served = reg.audit.served_at("iris", moments[moment])
        return served.source, [(v.version, v.role, v.traffic, v.mode) for v in served.versions]

    with pytest.raises(NotFoundError, match="no record of what 'iris' served"):
        reg.audit.served_at("iris", moments["before"])
    assert answer("alias 1") == ("alias", [(1, "stable", 100.0, None)])
    assert answer("alias 2") == ("alias", [(2, "stable", 100.0, None)])
    assert answer("warming") == ("deployment", [(2, "stable", 100.0, None),
                                                (3, "candidate", 0.0, "canary")])
    assert answer("canary 25") == ("deployment", [(2, "stable", 75.0, None),
                                                  (3, "candidate", 25.0, "canary")])
    assert answer("promoted") == ("deployment", [(3, "stable", 100.0, None)])
    assert answer("rolled back") == ("deployment", [(2, "stable", 100.0, None)])
    assert answer("shadow") == ("deployment", [(2, "stable", 100.0, None),
                                               (3, "candidate", 0.0, "shadow")])
    canary = reg.audit.served_at("iris", moments["canary 25"])
    assert canary.rollout_id == rollout.id and canary.record.action == "rollout.step"
    assert ("iris served iris/2 (75% of traffic) and candidate iris/3 (25% of traffic, "
            f"canary), during rollout #{rollout.id}") in canary.sentence()
    # The same instant in another zone is the same answer.
    local = moments["promoted"].astimezone(timezone(timedelta(hours=5)))
    assert reg.audit.served_at("iris", local).versions == reg.audit.served_at(
        "iris", moments["promoted"]).versions
    with pytest.raises(InvalidInputError, match="must carry a zone"):
        reg.audit.served_at("iris", datetime.now())


def test_a_pre_audit_database_migrates_to_an_empty_intact_chain(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = db.create_engine(database_url)
    with engine.connect().execution_options(modelport_write=True) as conn, conn.begin():
        cfg = Config()
        cfg.set_main_option("script_location", str(db.MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    assert db.upgrade(engine) == ("0003", db.HEAD_REVISION)
    store = SqlRegistryStore(engine)
    try:
        from modelport.registry.audit import AuditStore

        result = AuditStore(store).verify()
        assert (result.ok, result.records, result.head_count, result.head_hash) == (
            True, 0, 0, audit.GENESIS)
        store.create_version("iris", new())
        assert AuditStore(store).verify().records == 1
    finally:
        store.close()
