"""Strategies: step lists, durations and plans, with precise refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelport.errors import InvalidInputError
from modelport.registry.entities import Mode
from modelport.rollout.strategies import mode_at, parse_duration, parse_steps, plan


def test_steps_parse() -> None:
    assert parse_steps("5,25,50,100") == [5, 25, 50, 100]
    assert parse_steps(" 0.5, 100 ") == [0.5, 100]
    assert parse_steps("100") == [100]


@pytest.mark.parametrize(("text", "message"), [
    ("5,25,50", "must end at 100 (the candidate takes all traffic before promotion), but "
                "ends at 50"),
    ("5,50,25,100", "must increase strictly: 25 follows 50"),
    ("5,5,100", "must increase strictly: 5 follows 5"),
    ("0,100", "'0' is outside (0, 100]"),
    ("5,150", "'150' is outside (0, 100]"),
    ("5,abc,100", "'abc' is not a number"),
    ("5,,100", "'' is not a number"),
    ("", "--steps is empty"),
    ("nan,100", "'nan' is outside (0, 100]"),
])
def test_bad_steps_are_refused_precisely(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_steps(text)
    assert message in str(info.value)


@given(st.lists(st.integers(1, 99), unique=True, max_size=8))
def test_any_increasing_list_ending_at_100_parses_back(values: list[int]) -> None:
    steps = [*sorted(values), 100]
    assert parse_steps(",".join(map(str, steps))) == steps


@pytest.mark.parametrize(("text", "seconds"), [
    ("60s", 60), ("2m", 120), ("500ms", 0.5), ("1h30m", 5400), ("1m30s", 90), ("45", 45),
    ("1.5s", 1.5),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["abc", "", "10x", "s", "-5s", "5 s", "1m 2s", "0s", "8d",
                                  "999h", "1s2"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="--step-duration"):
        parse_duration(text)


def test_plans() -> None:
    p = plan("canary", steps="10,100", step_duration="1m")
    assert (p.steps, p.step_seconds, p.step_requests, p.first_mode) == ([10, 100], 60, None,
                                                                      Mode.CANARY)
    assert plan("shadow", step_requests=100).steps == [0]
    assert plan("bluegreen", step_duration="30s").steps == [0, 100]
    assert [mode_at("bluegreen", i) for i in (0, 1)] == [Mode.SHADOW, Mode.BLUEGREEN]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strategy": "linear", "step_duration": "1m"}, "unknown strategy 'linear'"),
    ({"strategy": "canary"}, "give --step-duration and/or --step-requests"),
    ({"strategy": "canary", "step_requests": 0}, "--step-requests must be at least 1"),
    ({"strategy": "shadow", "steps": "5,100", "step_duration": "1m"},
     "--steps is for canary"),
])
def test_bad_plans_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        plan(**kwargs)  # type: ignore[arg-type]
