"""End to end: a real ``modelport serve`` evaluates the alert rules of its serve.yaml
against a real rollout; a firing rule aborts the rollout or rolls the endpoint back,
the alert is stored with what it did, and a real webhook receiver gets the firing
payload. Every wait has a deadline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelport.registry.entities import RolloutStatus
from tests.e2e.conftest import Cli
from tests.e2e.server import ServerProcess
from tests.e2e.test_server_lifecycle import oip_body, register_iris, registry, wait_for
from tests.monitoring.test_alerts import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def serve_yaml(tmp_path: Path, action: str, webhook: str) -> Path:
    """Model m@champion with one rule that fires once the endpoint answered 6 requests."""
    path = tmp_path / "serve.yaml"
    path.write_text(f"""\
models:
  - uri: models:/m@champion
    alerts:
      - name: busy
        expr: requests > 5 over 1m
        for: 0s
        severity: critical
        action: {action}
        webhook: {webhook}
        description: deterministic in a test
alerting: {{enabled: true, interval: 1}}
""")
    return path


def ok(result: Any) -> Any:
    assert result.returncode == 0, result
    return result


def send(url: str, body: dict[str, Any], n: int) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=30) as client:
        answers = [client.post("/v2/models/m/infer", json=body) for _ in range(n)]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return answers


def fired(cli: Cli, home: Path, receiver: Receiver, action: str) -> dict[str, Any]:
    """The stored alert (firing, with what it did) and the webhook's firing payload."""
    [alert] = ok(cli.run(home, "monitor", "alerts", "m", "--json")).json()
    assert (alert["rule"], alert["state"], alert["severity"]) == ("busy", "firing",
                                                                  "critical")
    assert alert["action"].startswith(f"{action}: "), alert
    assert alert["value"] >= 6 and alert["expr"] == "requests > 5 over 1m"
    [body] = receiver.bodies
    assert body["status"] == "firing"
    [item] = body["alerts"]
    assert item["labels"] == {"alertname": "busy", "endpoint": "m", "severity": "critical"}
    assert item["annotations"]["action"] == alert["action"]
    assert item["annotations"]["description"] == "deterministic in a test"
    return alert  # type: ignore[no-any-return]


def test_a_firing_rule_aborts_the_running_rollout(cli: Cli, tmp_path: Path,
                                                 receiver: Receiver) -> None:
    home = tmp_path / "home"
    Xq, _ = register_iris(home)
    config = serve_yaml(tmp_path, "abort_rollout", receiver.url)
    with ServerProcess(home, ["--config", str(config)]) as server:
        started = ok(cli.run(home, "rollout", "start", "m", "--candidate", "m/2",
                             "--strategy", "canary", "--step-duration", "10m", "--json"))
        rollout_id = started.json()["rollout"]["id"]
        send(server.url, oip_body(Xq), 10)

        def aborted() -> bool:
            with registry(home) as reg:
                return reg.deployments.rollout(rollout_id).status is RolloutStatus.ABORTED
        wait_for(aborted, 30, "the alert aborts the rollout", server)
        alert = fired(cli, home, receiver, "abort_rollout")
        assert alert["action"] == f"abort_rollout: rollout #{rollout_id} aborted"
    [status] = ok(cli.run(home, "rollout", "status", "m", "--json")).json()
    assert status["rollout"]["status"] == "aborted"
    assert status["rollout"]["reason"].startswith("alert busy firing: requests = ")
    last = ok(cli.run(home, "rollout", "history", "m", "--json")).json()[-1]
    assert (last["kind"], last["actor"]) == ("aborted", "modelport-alerts")
    assert "alert busy firing" in last["reason"] and "(requests > 5 over 1m)" in last["reason"]
    assert last["state"]["candidate"] is None and last["state"]["stable"] == 1


def test_a_firing_rule_rolls_back_to_the_previous_version(cli: Cli, tmp_path: Path,
                                                         receiver: Receiver) -> None:
    home = tmp_path / "home"
    Xq, expected = register_iris(home)
    config = serve_yaml(tmp_path, "rollback", receiver.url)
    with ServerProcess(home, ["--config", str(config)]) as server:
        ok(cli.run(home, "rollout", "start", "m", "--candidate", "m/2", "--strategy",
                   "canary", "--step-duration", "10m"))
        promoted = ok(cli.run(home, "rollout", "promote", "m", "--json")).json()
        assert (promoted["deployment"]["stable"], promoted["deployment"]["previous"]) == (2, 1)
        send(server.url, oip_body(Xq), 10)

        def rolled_back() -> bool:
            with registry(home) as reg:
                return reg.deployments.get("m").stable == 1
        wait_for(rolled_back, 30, "the alert rolls the endpoint back", server)
        alert = fired(cli, home, receiver, "rollback")
        assert alert["action"] == "rollback: stable is now m/1"

        def answers_v1() -> bool:
            [answer] = send(server.url, oip_body(Xq), 1)
            return answer.headers["x-model-version"] == "1"
        wait_for(answers_v1, 30, "the server follows the rollback", server)
        assert send(server.url, oip_body(Xq), 1)[0].json()["outputs"][0]["data"] == \
            expected["1"]
    last = ok(cli.run(home, "rollout", "history", "m", "--json")).json()[-1]
    assert (last["kind"], last["actor"]) == ("rollback", "modelport-alerts")
    assert last["reason"].startswith("alert busy firing: requests = ")
    assert (last["state"]["stable"], last["state"]["previous"]) == (1, 2)
    assert len(receiver.bodies) == 1  # still firing: no second notification, no second act


def test_bad_alert_configuration_stops_serve_before_it_starts(cli: Cli,
                                                              tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad = tmp_path / "serve.yaml"
    bad.write_text("models:\n  - uri: models:/m@champion\n    alerts:\n"
                   "      - {name: busy, expr: 'requests >> 5'}\n")
    result = cli.run(home, "serve", "--config", bad)
    assert result.returncode == 7, result
    assert ("invalid serve configuration at models[0].alerts[0] (busy): invalid alert "
            "expression 'requests >> 5': expected a number") in result.stderr
    assert "Traceback" not in result.stderr
    result = cli.run(home, "serve", "m@champion", "--alerts", tmp_path / "missing.yaml")
    assert result.returncode == 7 and "--alerts: cannot read rules file" in result.stderr, \
        result
    assert not home.exists()  # nothing was opened or created
