"""The alert rule grammar: the examples of the issue, precise errors, and properties."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelport.errors import InvalidInputError
from modelport.monitoring.rules import (
    FEATURE_DRIFT,
    METRICS,
    OPERATORS,
    load_rules,
    parse_duration,
    parse_expression,
    parse_rules,
)


@pytest.mark.parametrize(("text", "metric", "feature", "op", "threshold", "window"), [
    ("mse > 0.5 over 1h", "mse", None, ">", 0.5, timedelta(hours=1)),
    ("psi(petal_length) > 0.2", "psi", "petal_length", ">", 0.2, timedelta(hours=1)),
    ("error_rate > 1%", "error_rate", None, ">", 0.01, timedelta(hours=1)),
    ("p99_latency_ms > 50", "p99_latency_ms", None, ">", 50.0, timedelta(hours=1)),
    ("accuracy < 0.9 over 24h", "accuracy", None, "<", 0.9, timedelta(hours=24)),
    ("drift_share > 0.3", "drift_share", None, ">", 0.3, timedelta(hours=1)),
    ("  ACCURACY<=.75   over 1h30m ", "accuracy", None, "<=", 0.75, timedelta(minutes=90)),
    ("psi( age ) >= 1e-1 over 15m", "psi", "age", ">=", 0.1, timedelta(minutes=15)),
])
def test_examples_parse(text: str, metric: str, feature: str | None, op: str,
                        threshold: float, window: timedelta) -> None:
    c = parse_expression(text)
    assert (c.metric, c.feature, c.op, c.window) == (metric, feature, op, window)
    assert c.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(("text", "message"), [
    ("", "non-empty"),
    ("latency > 5", "unknown metric 'latency'"),
    ("mse 0.5", "expected a comparison"),
    ("mse > ", "expected a number, got the end"),
    ("mse > abc", "expected a number, got 'abc' at column 7"),
    ("psi > 0.2", "psi needs a feature"),
    ("mse(x) > 0.2", "mse takes no feature"),
    ("psi(x > 0.2", "expected ')'"),
    ("mse > 0.5 over", "expected a window"),
    ("mse > 0.5 over 1y", "invalid window"),
    ("mse > 0.5 over 0s", "window must be positive"),
    ("mse > 0.5 and 1", "expected the end of the expression"),
    ("mse > 0.5; import os", "unexpected ';' at column 10"),
    ("__import__('os') > 1", "unexpected \"'\" at column 12"),
    ("mse > 1e999", "must be finite"),
    ("mse > 0.5 over 1000d", "longer than 90 days"),
])
def test_bad_expressions_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_expression(text)


_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(lambda s: s != "over")


@given(metric=st.sampled_from(METRICS), feature=_names, op=st.sampled_from(list(OPERATORS)),
       number=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
       pct=st.booleans(), window=st.one_of(st.none(), st.integers(1, 1000)),
       unit=st.sampled_from("smh"), spaces=st.sampled_from(["", " ", "   "]))
def test_generated_expressions_round_trip(metric: str, feature: str, op: str, number: float,
                                          pct: bool, window: int | None, unit: str,
                                          spaces: str) -> None:
    subject = f"{metric}({feature})" if metric in FEATURE_DRIFT else metric
    text = f"{subject}{spaces}{op}{spaces}{number!r}{'%' if pct else ''}"
    if window is not None:
        text += f" over {window}{unit}"
    c = parse_expression(text)
    assert c.metric == metric and c.op == op
    assert c.feature == (feature if metric in FEATURE_DRIFT else None)
    assert c.threshold == pytest.approx(number / 100 if pct else number)
    expected = timedelta(hours=1) if window is None else timedelta(
        seconds=window * {"s": 1, "m": 60, "h": 3600}[unit])
    assert c.window == expected


@given(st.text(max_size=60))
def test_any_text_parses_or_fails_with_invalid_input(text: str) -> None:
    try:
        c = parse_expression(text)
    except InvalidInputError as exc:
        assert str(exc)
    else:
        assert c.metric in METRICS


def test_duration() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("0s") == timedelta(0)
    with pytest.raises(InvalidInputError, match="invalid for 'x'"):
        parse_duration("x", "for")


def test_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("""
endpoints:
  iris:
    - name: errors
      expr: error_rate > 1%
      for: 2m
      severity: critical
      action: rollback
      webhook: http://127.0.0.1:9/hook
    - {name: drift, expr: "psi(petal_length) > 0.2"}
""")
    rules = load_rules(path)
    assert [(r.endpoint, r.name, r.severity, r.action) for r in rules] == [
        ("iris", "errors", "critical", "rollback"), ("iris", "drift", "warning", "none")]
    assert rules[0].for_ == timedelta(minutes=2)


@pytest.mark.parametrize(("doc", "message"), [
    ([], "expected a mapping with 'endpoints"),
    ({"endpoints": {"iris": {"name": "x"}}}, "needs a list of rules"),
    ({"endpoints": {"iris": [{"expr": "mse > 1"}]}}, "'name' is required"),
    ({"endpoints": {"iris": [{"name": "a", "expr": "mse > 1", "sev": 1}]}}, "unknown key"),
    ({"endpoints": {"iris": [{"name": "a", "expr": "mse >"}]}}, r"iris rule 1 \(a\)"),
    ({"endpoints": {"iris": [{"name": "a", "expr": "mse > 1", "action": "boom"}]}},
     "action must be one of"),
    ({"endpoints": {"iris": [{"name": "a", "expr": "mse > 1", "severity": "bad"}]}},
     "severity must be one of"),
    ({"endpoints": {"iris": [{"name": "a", "expr": "mse > 1", "webhook": "ftp://x"}]}},
     "webhook must be an http"),
    ({"endpoints": {"iris": [{"name": "a", "expr": "mse > 1"},
                             {"name": "a", "expr": "mse > 2"}]}}, "two rules named 'a'"),
    ({"endpoints": {"bad name": []}}, "invalid endpoint name"),
])
def test_bad_rules_documents(doc: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_rules(doc)


def test_unreadable_rules_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("endpoints: [unclosed")
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        load_rules(bad)
