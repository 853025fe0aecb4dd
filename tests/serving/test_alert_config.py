"""Alert rules in serve.yaml (``models[i].alerts``, ``alerting:``) and ``serve --alerts
FILE``: checked when the configuration loads, with the place and the reason."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modelport.cli.alerting import serve_rules, start_alerter
from modelport.config import Settings
from modelport.errors import ConfigurationError
from modelport.serving.config import load_spec

GOOD = """\
models:
  - uri: models:/iris@champion
    alerts:
      - name: errors
        expr: error_rate > 1% over 10m
        for: 2m
        severity: critical
        action: rollback
        webhook: http://127.0.0.1:9093/hook
        description: too many failed requests
      - {name: busy, expr: requests > 5 over 1m, action: abort_rollout}
  - uri: fraud/7
    name: fraud-v7
    alerts:
      - {name: errors, expr: "psi(amount) > 0.2"}
alerting: {enabled: true, interval: 1, lease_ttl: 5}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    return path


def test_rules_load_on_the_served_names(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD), [])
    rules = spec.alert_rules()
    assert [(r.endpoint, r.name) for r in rules] == [
        ("iris", "errors"), ("iris", "busy"), ("fraud-v7", "errors")]
    errors = rules[0]
    assert (errors.condition.metric, errors.condition.threshold) == ("error_rate", 0.01)
    assert errors.for_.total_seconds() == 120 and errors.severity == "critical"
    assert (errors.action, errors.webhook) == ("rollback", "http://127.0.0.1:9093/hook")
    assert errors.description == "too many failed requests"
    assert rules[2].condition.feature == "amount"
    assert (spec.alerting.enabled, spec.alerting.interval, spec.alerting.lease_ttl) == (
        True, 1.0, 5.0)
    # The spec still travels to the workers as JSON, rules included.
    again = type(spec).model_validate_json(spec.model_dump_json())
    assert again.alert_rules() == rules


def test_defaults_without_alerts(tmp_path: Path) -> None:
    spec = load_spec(None, ["m"])
    assert spec.alert_rules() == []
    assert (spec.alerting.enabled, spec.alerting.interval) == (True, 30.0)


@pytest.mark.parametrize(("alerts", "words"), [
    ("[{name: a, expr: error_rate > 1%}, {name: b, expr: 'mse >> 1'}]",
     "at models[0].alerts[1] (b): invalid alert expression 'mse >> 1': expected a number, "
     "got '>' at column 6"),
    ("[{name: a, expr: 'speed > 1'}]", "models[0].alerts[0] (a): invalid alert expression "
     "'speed > 1': unknown metric 'speed'"),
    ("[{name: a, expr: 'psi > 1'}]", "psi needs a feature"),
    ("[{name: a, expr: 'requests > 1 over 0s'}]", "the window must be positive"),
    ("[{name: a, expr: error_rate > 1%, when: now}]",
     "models[0].alerts[0]: unknown key(s) when; known: action, cooldown, description, expr, "
     "for, name, on_alert, pipeline_file, retrain_window, severity, webhook"),
    ("[{expr: error_rate > 1%}]", "models[0].alerts[0]: 'name' is required"),
    ("[{name: a}]", "models[0].alerts[0]: 'expr' is required"),
    ("['error_rate > 1%']", "models[0].alerts[0]: a rule must be a mapping"),
    ("[{name: 'bad name', expr: error_rate > 1%}]", "invalid alert name 'bad name'"),
    ("[{name: a, expr: error_rate > 1%, severity: loud}]",
     "models[0].alerts[0] (a): severity must be one of info, warning, critical, got 'loud'"),
    ("[{name: a, expr: error_rate > 1%, action: reboot}]",
     "action must be one of none, abort_rollout, rollback, got 'reboot'"),
    ("[{name: a, expr: error_rate > 1%, webhook: 'ftp://x'}]",
     "webhook must be an http(s) URL, got 'ftp://x'"),
    ("[{name: a, expr: error_rate > 1%, for: soon}]",
     "invalid models[0].alerts[0] (a) 'for' 'soon'"),
    ("[{name: a, expr: error_rate > 1%}, {name: a, expr: requests > 1}]",
     "at models[0].alerts[1]: endpoint 'iris' already has an alert rule named 'a'"),
    ("{name: a, expr: error_rate > 1%}", "at models.0.alerts: Input should be a valid list"),
])
def test_each_bad_rule_names_its_place(tmp_path: Path, alerts: str, words: str) -> None:
    path = write(tmp_path, f"models:\n  - uri: models:/iris@champion\n    alerts: {alerts}\n")
    with pytest.raises(ConfigurationError) as caught:
        load_spec(path, [])
    assert words in str(caught.value)
    assert str(caught.value).startswith("invalid serve configuration at ")
    assert caught.value.exit_code == 7


@pytest.mark.parametrize(("alerting", "where"), [
    ("{interval: 0}", "alerting.interval"),
    ("{lease_ttl: 0}", "alerting.lease_ttl"),
    ("{enabled: maybe}", "alerting.enabled"),
    ("{every: 5}", "alerting.every"),
])
def test_bad_alerting_section(tmp_path: Path, alerting: str, where: str) -> None:
    path = write(tmp_path, f"models:\n  - uri: m\nalerting: {alerting}\n")
    with pytest.raises(ConfigurationError, match=f"invalid serve configuration at {where}"):
        load_spec(path, [])


def test_the_same_rule_name_on_two_models_with_one_served_name(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  - {uri: m/1, name: m, alerts: [{name: a, expr: "
                 "requests > 1}]}\n  - {uri: n, name: m, alerts: [{name: a, expr: "
                 "errors > 1}]}\n")
    with pytest.raises(ConfigurationError, match=r"models\[1\]\.alerts\[0\]: endpoint 'm' "
                       "already has an alert rule named 'a'"):
        load_spec(path, []).alert_rules()


def test_alerts_file_is_merged_and_checked(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    spec = load_spec(write(tmp_path, GOOD), [])
    extra = tmp_path / "alerts.yaml"
    extra.write_text("endpoints:\n  iris:\n    - {name: slow, expr: p99_latency_ms > 50}\n"
                     "  elsewhere:\n    - {name: e, expr: errors > 0}\n")
    with caplog.at_level(logging.WARNING, logger="modelport.serving"):
        rules = serve_rules(spec, extra)
    assert [(r.endpoint, r.name) for r in rules][-2:] == [("iris", "slow"),
                                                          ("elsewhere", "e")]
    assert "endpoints this server does not serve: elsewhere" in caplog.text
    assert serve_rules(spec, None) == spec.alert_rules()

    extra.write_text("endpoints:\n  iris:\n    - {name: busy, expr: requests > 1}\n")
    with pytest.raises(ConfigurationError, match="endpoint 'iris' rule 'busy' is also in "
                       "the serve configuration"):
        serve_rules(spec, extra)
    extra.write_text("endpoints:\n  iris:\n    - {name: x, expr: 'mse >> 1'}\n")
    with pytest.raises(ConfigurationError, match=r"--alerts: .*alerts.yaml: iris rule 1 "
                       r"\(x\): invalid alert expression"):
        serve_rules(spec, extra)
    with pytest.raises(ConfigurationError, match="--alerts: cannot read rules file"):
        serve_rules(spec, tmp_path / "missing.yaml")


def test_no_alerter_without_rules_or_when_disabled(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "home")
    spec = load_spec(write(tmp_path, GOOD.replace("enabled: true", "enabled: false")), [])
    assert start_alerter(settings, spec, spec.alert_rules()) is None
    assert start_alerter(settings, load_spec(None, ["m"]), []) is None
    assert not (tmp_path / "home").exists()  # not even a registry was opened
