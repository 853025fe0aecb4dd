"""The real CLI: monitor check --once fires an accuracy alert from logged predictions and
labels, monitor alerts shows it, and bad rules files fail cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_monitor_cli import _log

pytestmark = pytest.mark.e2e


def test_check_once_fires_and_alerts_lists_it(cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _log(home / "monitoring")  # predictions 0,1,0,1,0,1
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"req-{i},1\n" for i in range(6)))  # half wrong
    assert cli.run(home, "feedback", "iris", labels).returncode == 0
    rules = tmp_path / "alerts.yaml"
    rules.write_text("endpoints:\n  iris:\n"
                     "    - {name: accuracy-low, expr: accuracy < 0.9 over 1h,"
                     " severity: critical}\n"
                     "    - {name: errors, expr: error_rate > 1%}\n")
    checked = cli.run(home, "monitor", "check", "--rules", rules, "--once", "--json")
    assert checked.returncode == 0, checked
    acc, errors = checked.json()
    assert (acc["rule"], acc["state"], acc["value"]) == ("accuracy-low", "firing", 0.5)
    assert errors["state"] == "ok" and errors["breached"] is None  # no traffic counters
    again = cli.run(home, "monitor", "check", "--rules", rules, "--once", "--json")
    assert again.json()[0]["change"] == ""  # still the same alert
    shown = cli.run(home, "monitor", "alerts", "iris", "--json")
    assert shown.returncode == 0, shown
    [alert] = shown.json()
    assert (alert["rule"], alert["state"], alert["severity"]) == (
        "accuracy-low", "firing", "critical")
    table = cli.run(home, "monitor", "alerts", "iris", env={"COLUMNS": "200"})
    assert "accuracy-low" in table.stdout and "firing" in table.stdout


def test_bad_rules_file_exits_2(cli, tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text("endpoints:\n  iris:\n    - {name: x, expr: 'mse >> 1'}\n")
    result = cli.run(tmp_path / "home", "monitor", "check", "--rules", rules, "--once")
    assert result.returncode == 2, result
    assert "expected a number, got '>' at column 6" in result.stderr
    listed = cli.run(tmp_path / "home", "monitor", "alerts", "bad name")
    assert listed.returncode == 2 and "invalid endpoint name" in listed.stderr


def test_report_json_table_and_html(cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _log(home / "monitoring")
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"req-{i},{i % 2}\n" for i in range(6)))
    assert cli.run(home, "feedback", "iris", labels).returncode == 0
    page = tmp_path / "report.html"
    result = cli.run(home, "monitor", "report", "iris", "--window", "24h", "--json",
                     "--html", page)
    assert result.returncode == 0, result
    data = result.json()
    assert data["realized"]["versions"][0]["metrics"]["accuracy"] == 1.0
    # No deployment and no registered model "iris": the version that answered most
    # stands in for stable, and the report says there is nothing to compare it with.
    assert "no registered model 'iris'" in data["drift"]["note"]
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "<script" not in text
    table = cli.run(home, "monitor", "report", "iris", env={"COLUMNS": "200"})
    assert table.returncode == 0 and "Realized" in table.stdout, table
    bad = cli.run(home, "monitor", "report", "iris", "--window", "soon")
    assert bad.returncode == 2 and "invalid window 'soon'" in bad.stderr
