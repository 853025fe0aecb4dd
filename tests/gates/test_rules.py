"""The rule grammar: valid rules round-trip, anything else is a precise InvalidInputError."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelport.errors import InvalidInputError
from modelport.gates.metrics import ALL_METRICS
from modelport.gates.rules import OPERATORS, Rule, parse_rule, parse_rules

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
metrics = st.sampled_from(ALL_METRICS)
ops = st.sampled_from(sorted(OPERATORS))


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    metric, op = draw(metrics), draw(ops)
    shape = draw(st.sampled_from(["number", "champion", "adjusted"]))
    if shape == "number":
        return Rule(metric, op, value=draw(finite))
    if shape == "champion":
        return Rule(metric, op)
    return Rule(metric, op, arith=draw(st.sampled_from("+-*")), operand=draw(finite))


@given(rules())
def test_valid_rules_round_trip(rule: Rule) -> None:
    assert parse_rule(str(rule)) == rule


@given(rules(), st.sampled_from(["", " ", "  ", "\t"]))
def test_spacing_and_case_do_not_matter(rule: Rule, space: str) -> None:
    text = str(rule).replace(" ", space).upper()
    assert parse_rule(text) == rule


@settings(max_examples=400)
@given(st.text(max_size=60))
def test_junk_raises_only_invalid_input(text: str) -> None:
    try:
        rule = parse_rule(text)
    except InvalidInputError:
        return
    assert isinstance(rule, Rule) and rule.metric in ALL_METRICS


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["accuracy", "champion", ">=", "<", "==", "-", "+", "*",
                                 "0.5", "1e-3", "-2", "f1", ".", "(", "e", " "]),
                max_size=8))
def test_token_soup_raises_only_invalid_input(parts: list[str]) -> None:
    with contextlib.suppress(InvalidInputError):
        parse_rule(" ".join(parts))


@pytest.mark.parametrize(("text", "rule"), [
    ("accuracy >= 0.90", Rule("accuracy", ">=", value=0.9)),
    ("f1 >= champion - 0.01", Rule("f1", ">=", arith="-", operand=0.01)),
    ("rmse <= champion * 1.05", Rule("rmse", "<=", arith="*", operand=1.05)),
    ("r2 > 0.5", Rule("r2", ">", value=0.5)),
    ("log_loss<champion", Rule("log_loss", "<")),
    ("mae <= -1e-3", Rule("mae", "<=", value=-0.001)),
    ("recall >= champion + -0.5", Rule("recall", ">=", arith="+", operand=-0.5)),
])
def test_examples(text: str, rule: Rule) -> None:
    assert parse_rule(text) == rule


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "empty rule"),
    ("accuracy", "expected a comparison"),
    ("accuracy >=", "expected a number at the end"),
    ("accuracy => 0.9", "unexpected character '=' at column 10"),
    ("accuracy >= 0.9 0.8", "unexpected '0.8'"),
    ("accuracy >= champion / 2", "unexpected character '/'"),
    ("accuracy >= baseline", "expected a number or 'champion'"),
    ("accuracy >= champion -", "expected a number at the end"),
    ("accuracy >= 1e999", "finite"),
    ("accuracy >= __import__('os')", "unexpected character '('"),
    ("accuracy >= __import__", "expected a number or 'champion' at column 13"),
    ("x" * 300, "longer than 200"),
])
def test_malformed_rules_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_rule(text)
    assert fragment in str(info.value)


def test_unknown_metric_lists_the_available_ones_and_suggests() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_rule("acuracy >= 0.9")
    message = str(info.value)
    assert "unknown metric 'acuracy'" in message and "did you mean 'accuracy'" in message
    assert all(m in message for m in ALL_METRICS)


def test_thresholds_and_verdicts() -> None:
    assert parse_rule("f1 >= champion - 0.01").threshold(0.9) == pytest.approx(0.89)
    assert parse_rule("rmse <= champion * 1.05").holds(1.04, champion=1.0)
    assert not parse_rule("rmse <= champion * 1.05").holds(1.06, champion=1.0)
    assert parse_rule("accuracy == 0.3").holds(0.1 + 0.2)  # tolerant float equality
    assert parse_rule("r2 > 0.5").holds(0.51) and not parse_rule("r2 > 0.5").holds(0.5)
    with pytest.raises(InvalidInputError, match="no champion"):
        parse_rule("f1 >= champion").threshold(None)
    assert math.isclose(parse_rule("mae < champion + 1").threshold(2.0), 3.0)


def test_parse_rules_refuses_non_strings() -> None:
    with pytest.raises(InvalidInputError, match="must be a string"):
        parse_rules([0.9])  # type: ignore[list-item]
