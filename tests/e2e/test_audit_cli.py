"""End to end: ``modelport audit list|verify|at`` as real processes, after real alias
moves and a real rollout made with the CLI, and after tampering with the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from modelport.client import Registry
from modelport.config import Settings
from tests.e2e.conftest import Cli, Result

pytestmark = pytest.mark.e2e

ZONE = "Asia/Kolkata"  # +05:30 all year: a naive time read as UTC would be hours off


def ok(result: Result) -> Result:
    assert result.returncode == 0, str(result)
    return result


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A home with iris v1, v2 and v3 registered."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    h = tmp_path / "home"
    x, y = load_iris(return_X_y=True)
    with Registry(settings=Settings.load(h)) as reg:
        for i in range(3):
            reg.log_model(LogisticRegression(max_iter=200 + i).fit(x, y), "iris")
    yield h


def test_list_at_and_verify_after_real_moves(cli: Cli, home: Path) -> None:
    moments = {}
    ok(cli.run(home, "models", "alias", "iris", "champion", "1"))
    moments["champion 1"] = datetime.now(UTC)
    ok(cli.run(home, "rollout", "start", "iris", "--candidate", "iris/2", "--steps", "25,100",
               "--step-requests", "10"))
    moments["warming"] = datetime.now(UTC)
    ok(cli.run(home, "rollout", "promote", "iris"))
    moments["promoted"] = datetime.now(UTC)
    ok(cli.run(home, "rollback", "iris", "--reason", "pager"))
    moments["rolled back"] = datetime.now(UTC)

    listed = ok(cli.run(home, "audit", "list", "--json")).json()
    assert [r["action"] for r in listed] == [
        "version.register", "version.register", "version.register", "alias.set",
        "deployment.create", "rollout.start", "alias.set", "rollout.promote", "alias.set",
        "deployment.rollback"]
    assert [r["seq"] for r in listed] == list(range(1, 11))
    assert {r["actor"] for r in listed[3:]} == {"tester"}  # the CLI's MODELPORT_USER
    assert listed[-1]["reason"] == "pager"
    aliases = ok(cli.run(home, "audit", "list", "--model", "iris", "--action", "alias",
                         "--json")).json()
    assert [(r["target"], r["after"]) for r in aliases] == [
        ("iris@champion", {"version": v}) for v in (1, 2, 1)]
    assert [r["seq"] for r in ok(cli.run(home, "audit", "list", "--limit", "2",
                                         "--json")).json()] == [9, 10]
    table = ok(cli.run(home, "audit", "list", env={"COLUMNS": "250"})).stdout
    assert "rollout.promote" in table and "stable 1→2" in table

    # A time without a zone is local time (here +05:30).
    local = moments["champion 1"].astimezone(ZoneInfo(ZONE)).replace(tzinfo=None)
    first = ok(cli.run(home, "audit", "at", "iris", local.isoformat(), "--json",
                       env={"TZ": ZONE})).json()
    assert (first["source"], first["versions"]) == (
        "alias", [{"version": 1, "role": "stable", "traffic": 100.0, "mode": None}])
    warming = ok(cli.run(home, "audit", "at", "iris",
                         moments["warming"].isoformat().replace("+00:00", "Z"))).stdout
    assert ("iris served iris/1 (all traffic) and candidate iris/2 (0% of traffic, canary), "
            "during rollout #1") in " ".join(warming.split())
    for moment, stable in (("promoted", 2), ("rolled back", 1)):
        served = ok(cli.run(home, "audit", "at", "iris", moments[moment].isoformat(),
                            "--json")).json()
        assert [(v["version"], v["role"]) for v in served["versions"]] == [(stable, "stable")]
        assert served["source"] == "deployment"
    now = ok(cli.run(home, "audit", "at", "iris", "now", "--json")).json()
    assert now["record"]["action"] == "deployment.rollback"

    intact = ok(cli.run(home, "audit", "verify"))
    assert "audit log intact: 10 records" in intact.stdout
    assert ok(cli.run(home, "audit", "verify", "--json")).json()["ok"] is True


def test_verify_exits_12_naming_the_tampered_record(cli: Cli, home: Path) -> None:
    ok(cli.run(home, "models", "alias", "iris", "champion", "1"))
    ok(cli.run(home, "models", "alias", "iris", "champion", "2"))
    with sqlite3.connect(home / "registry.db") as conn:
        conn.execute("UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 4")
    broken = cli.run(home, "audit", "verify")
    assert broken.returncode == 12, str(broken)
    assert "record seq 4 was edited" in broken.stderr and "Traceback" not in broken.stderr
    as_json = cli.run(home, "audit", "verify", "--json")
    assert as_json.returncode == 12
    assert [(p["kind"], p["seq"]) for p in as_json.json()["problems"]] == [("edited", 4)]
    with sqlite3.connect(home / "registry.db") as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 5")
    truncated = cli.run(home, "audit", "verify")
    assert truncated.returncode == 12
    assert "record seq 5 is missing (deleted)" in truncated.stderr


def test_bad_input_is_a_clear_error(cli: Cli, home: Path) -> None:
    bad_time = cli.run(home, "audit", "at", "iris", "last tuesday")
    assert bad_time.returncode == 2 and "invalid time 'last tuesday'" in bad_time.stderr
    unknown = cli.run(home, "audit", "at", "nosuch", "now")
    assert unknown.returncode == 3
    assert "no record of what 'nosuch' served" in unknown.stderr
    bad_name = cli.run(home, "audit", "at", "../etc", "now")
    assert bad_name.returncode == 2, str(bad_name)
    assert cli.run(home, "audit", "list", "--limit", "0").returncode == 2
