"""Alert evaluation on a real registry: firing, no duplicates, resolving, `for:`,
webhooks to a real HTTP receiver on 127.0.0.1, and actions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelport.client import Registry
from modelport.monitoring.alerts import Alerter
from modelport.monitoring.rules import parse_rules
from modelport.registry.traffic import VersionStats

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver: records each JSON body; answers ``status`` (list, in turn)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append(json.loads(body))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def report(registry: Registry, requests: int, errors: int, ms: float = 3.0) -> None:
    stats = VersionStats(state="ready")
    for i in range(requests):
        stats.record(ms / 1000.0, ok=i >= errors)
    registry.records.report_traffic("server-1", "iris", {1: stats.to_dict()})


def rules(*items: dict[str, Any]) -> list[Any]:
    return parse_rules({"endpoints": {"iris": list(items)}})


def test_error_rate_fires_once_then_resolves(registry: Registry, tmp_path: Path,
                                             receiver: Receiver) -> None:
    done: list[tuple[str, str]] = []
    alerter = Alerter(registry, tmp_path, rules(
        {"name": "errors", "expr": "error_rate > 1% over 10m", "severity": "critical",
         "action": "rollback", "webhook": receiver.url}),
        actions={"rollback": lambda ep, why: done.append((ep, why)) or "rolled back"})
    report(registry, 100, 0)
    assert alerter.tick(T0)[0].change == ""  # first look: healthy
    report(registry, 200, 10)  # 10 errors in the last 100 requests
    out = alerter.tick(T0 + timedelta(minutes=1))[0]
    assert out.change == "firing" and out.value.value == pytest.approx(0.10)
    assert done and done[0][0] == "iris" and "alert errors firing" in done[0][1]
    assert out.alert is not None and out.alert.action == "rollback: rolled back"
    report(registry, 300, 20)
    assert alerter.tick(T0 + timedelta(minutes=2))[0].change == ""  # still firing
    firing = registry.alerts.list("iris")
    assert [a.state for a in firing] == ["firing"]  # no duplicate rows
    assert len(done) == 1
    report(registry, 100_000, 20)  # a healthy window
    out = alerter.tick(T0 + timedelta(minutes=3))[0]
    assert out.change == "resolved"
    [alert] = registry.alerts.list("iris")
    assert alert.state == "resolved" and alert.resolved_at == T0 + timedelta(minutes=3)
    assert [b["status"] for b in receiver.bodies] == ["firing", "resolved"]
    first = receiver.bodies[0]["alerts"][0]
    assert first["labels"] == {"alertname": "errors", "endpoint": "iris",
                               "severity": "critical"}
    assert first["endsAt"] == "0001-01-01T00:00:00Z"
    assert receiver.bodies[1]["alerts"][0]["endsAt"] == alert.resolved_at.isoformat()
    # a new breach is a new alert
    report(registry, 200_000, 50_000)
    assert alerter.tick(T0 + timedelta(minutes=4))[0].change == "firing"
    assert [a.state for a in registry.alerts.list("iris")] == ["firing", "resolved"]


def test_for_waits_before_firing_and_discards_a_blip(registry: Registry,
                                                     tmp_path: Path) -> None:
    alerter = Alerter(registry, tmp_path, rules(
        {"name": "slow", "expr": "p99_latency_ms > 50", "for": "2m"}))
    report(registry, 50, 0, ms=80)
    assert alerter.tick(T0)[0].change == "pending"
    report(registry, 100, 0, ms=80)  # counters grow: each window has requests
    assert alerter.tick(T0 + timedelta(minutes=1))[0].change == ""
    report(registry, 150, 0, ms=80)
    assert alerter.tick(T0 + timedelta(minutes=2))[0].change == "firing"
    [alert] = registry.alerts.list("iris", state="firing")
    assert alert.started_at == T0 and alert.fired_at == T0 + timedelta(minutes=2)

    blip = Alerter(registry, tmp_path, rules({"name": "blip", "expr": "requests > 10",
                                              "for": "5m"}))
    assert blip.tick(T0)[0].change == "pending"
    registry.records.prune_traffic(timedelta(0))  # counters gone: no data changes nothing
    assert blip.tick(T0 + timedelta(minutes=1))[0].breached is None
    assert registry.alerts.open_alert("iris", "blip") is not None


def test_failing_webhook_is_retried_and_never_fatal(registry: Registry,
                                                    tmp_path: Path) -> None:
    flaky = Receiver(statuses=[503, 500])
    try:
        alerter = Alerter(registry, tmp_path, rules(
            {"name": "e", "expr": "errors >= 1", "webhook": flaky.url},
            {"name": "dead", "expr": "errors >= 1", "webhook": "http://127.0.0.1:9/x"}),
            webhook_retries=3, webhook_timeout=2)
        report(registry, 10, 5)
        changes = [o.change for o in alerter.tick(T0)]
        assert changes == ["firing", "firing"]
        assert len(flaky.bodies) == 3  # two 5xx, then accepted
    finally:
        flaky.close()


def test_missing_action_and_no_data(registry: Registry, tmp_path: Path) -> None:
    alerter = Alerter(registry, tmp_path, rules(
        {"name": "e", "expr": "error_rate > 0", "action": "abort_rollout"},
        {"name": "acc", "expr": "accuracy < 0.9"},
        {"name": "drift", "expr": "psi(petal_length) > 0.2"}))
    report(registry, 10, 5)
    e, acc, drift = alerter.tick(T0)
    assert e.alert is not None and e.alert.action == "abort_rollout: not configured"
    assert acc.breached is None and "no predictions" in acc.value.note
    assert drift.breached is None and "no deployment" in drift.value.note


class Recorder:
    """A retrainer that records what it was handed (the real one: tests/retraining)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail = fail

    def fire(self, rule: Any, alert: Any) -> str:
        self.calls.append((rule.name, alert.id))
        if self.fail:
            from modelport.errors import StorageUnavailableError

            raise StorageUnavailableError("registry down")
        return "retrain started: pipeline retrain"


def test_on_alert_hands_the_firing_alert_to_the_retrainer_once(registry: Registry,
                                                                tmp_path: Path) -> None:
    recorder = Recorder()
    alerter = Alerter(registry, tmp_path, rules(
        {"name": "busy", "expr": "requests > 5", "action": "rollback",
         "on_alert": "run pipeline retrain"},
        {"name": "quiet", "expr": "requests > 1000000", "on_alert": "run pipeline retrain"}),
        actions={"rollback": lambda ep, why: "rolled back"}, retrainer=recorder)
    report(registry, 10, 0)
    busy, quiet = alerter.tick(T0)
    assert busy.change == "firing" and quiet.change == ""
    assert busy.alert is not None and recorder.calls == [("busy", busy.alert.id)]
    assert busy.alert.action == "rollback: rolled back; retrain started: pipeline retrain"
    report(registry, 20, 0)
    alerter.tick(T0 + timedelta(minutes=1))  # still firing: not handed over again
    assert len(recorder.calls) == 1
    unwired = Alerter(registry, tmp_path, rules(
        {"name": "other", "expr": "requests > 5", "on_alert": "run pipeline retrain"}))
    [out] = unwired.tick(T0)
    assert out.alert is not None and out.alert.action == "retrain: not configured"
    broken = Alerter(registry, tmp_path, rules(
        {"name": "third", "expr": "requests > 5", "on_alert": "run pipeline retrain"}),
        retrainer=Recorder(fail=True))
    [out] = broken.tick(T0)
    assert out.change == "firing" and out.alert is not None
    assert out.alert.action == "retrain failed: registry down"
