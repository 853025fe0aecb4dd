"""Retraining history in the audit log: triggers, skips, outcomes, the newest trigger."""

from __future__ import annotations

from modelport.client import Registry
from modelport.registry.retrains import ACTOR, FAIL, SKIP, SUCCEED, TRIGGER


def test_triggers_skips_and_outcomes_pair_up(registry: Registry) -> None:
    store = registry.retrains
    assert store.last_trigger("iris") is None and store.history() == []
    first = store.record_trigger("iris", rule="acc", alert_id=7, pipeline="retrain",
                                 reason="alert acc firing", details={"rows": 30})
    assert (first.status, first.rule, first.alert_id, first.details) == (
        "running", "acc", 7, {"rows": 30})
    store.record_skip("iris", rule="drift", alert_id=8, pipeline="retrain",
                      reason="a retraining run of iris is already running")
    done = store.record_outcome(first, succeeded=True, reason="ok",
                                details={"version_uri": "models:/iris/2", "rollout_id": 1})
    assert (done.status, done.reason, done.details["rows"], done.details["rollout_id"]) == (
        "succeeded", "ok", 30, 1)
    second = store.record_trigger("iris", rule="acc", alert_id=9, pipeline="retrain",
                                  reason="again", details={})
    store.record_outcome(second, succeeded=False, reason="gate failed", details={
        "exit_code": 10})
    store.record_trigger("fraud", rule="x", alert_id=None, pipeline="p", reason="r",
                         details={})
    last = store.last_trigger("iris")
    assert last is not None and last.id == second.id
    iris = store.history("iris")
    assert [(e.id, e.status, e.reason) for e in iris] == [
        (second.id, "failed", "gate failed"), (first.id + 1, "skipped",
                                               "a retraining run of iris is already running"),
        (first.id, "succeeded", "ok")]
    assert iris[0].finished_at is not None and iris[0].details == {"exit_code": 10}
    assert len(store.history()) == 4 and len(store.history(limit=1)) == 1
    records = registry.audit.list(action="retrain")
    assert [r.action for r in records] == [TRIGGER, SKIP, SUCCEED, TRIGGER, FAIL, TRIGGER]
    assert {r.actor for r in records} == {ACTOR}
    assert registry.audit.verify().ok
