"""Verdicts: thresholds, minimum samples, fail-fast, extra metrics, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelport.errors import InvalidInputError
from modelport.registry.entities import Mode
from modelport.registry.traffic import VersionStats, output_distance, shift_p_value
from modelport.rollout.analysis import Measurements, Thresholds, judge
from modelport.rollout.builtin import numbers


def side(requests: int, errors: int = 0, ms: float = 2.0,
         outputs: dict[str, int] | None = None, compared: int = 0, agreed: int = 0,
         ) -> VersionStats:
    """Counters of a window with these totals."""
    s = VersionStats()
    for i in range(requests):
        s.record(ms / 1000, ok=i >= errors)
    s.outputs = dict(outputs or {"c:1": requests - errors})
    s.record_shadow(compared, agreed)
    return s


def measured(cand: VersionStats, stable: VersionStats) -> Measurements:
    """Measurements as the built-in provider makes them."""
    c = numbers(cand)
    c["shift"] = output_distance(cand.outputs, stable.outputs)
    c["shift_p"] = shift_p_value(cand.outputs, stable.outputs)
    return Measurements(c, numbers(stable))


T = Thresholds(max_p99_ms=100.0, max_p99_ratio=3.0)


def test_healthy_candidate_passes_when_the_step_is_done() -> None:
    m = measured(side(50), side(500))
    assert judge(m, T, Mode.CANARY, step_done=False).outcome == "wait"
    v = judge(m, T, Mode.CANARY, step_done=True)
    assert v.outcome == "pass" and all(c.passed for c in v.checks)


def test_too_few_samples_hold_a_done_step() -> None:
    v = judge(measured(side(5), side(500)), T, Mode.CANARY, step_done=True)
    assert v.outcome == "wait" and "until 20 candidate samples (have 5)" in v.reason


@pytest.mark.parametrize(("cand", "stable", "words"), [
    (side(100, errors=10), side(500), "candidate error rate 10.0% over 5.0%"),
    (side(100, errors=4), side(500), "error rate above stable's 4.0% over 2.0%"),
    (side(100, ms=400), side(500), "candidate p99 (ms) 500 over 100"),
    (side(100, ms=40), side(500, ms=2), "candidate p99 / stable p99 25 over 3"),
    (side(100, outputs={"c:0": 100}), side(500), "output shift from stable 1 over 0.25"),
])
def test_each_limit_fails(cand: VersionStats, stable: VersionStats, words: str) -> None:
    v = judge(measured(cand, stable), T, Mode.CANARY, step_done=False)
    assert v.outcome == "fail" and words in v.reason


def test_a_small_shift_that_may_be_chance_holds_the_step_instead_of_failing() -> None:
    # 20 answers of three equally likely classes drawn unevenly: 0.3 apart, yet likely
    # chance (the shift that rolled back a good candidate in the first benchmark run).
    cand = side(21, outputs={"c:0": 13, "c:1": 6, "c:2": 2})
    stable = side(600, outputs={"c:0": 200, "c:1": 200, "c:2": 200})
    m = measured(cand, stable)
    assert m.candidate["shift"] > T.max_shift  # type: ignore[operator]
    assert judge(m, T, Mode.CANARY, step_done=False).outcome == "wait"
    done = judge(m, T, Mode.CANARY, step_done=True)
    assert done.outcome == "wait" and "not significant yet" in done.reason
    # The same shape with twenty times the data is no longer chance.
    big = side(420, outputs={"c:0": 260, "c:1": 120, "c:2": 40})
    assert judge(measured(big, stable), T, Mode.CANARY, step_done=False).outcome == "fail"


def test_error_increase_needs_a_stable_reference() -> None:
    v = judge(measured(side(100, errors=4), side(3)), T, Mode.CANARY, step_done=True)
    assert v.outcome == "pass"


def test_fail_fast_before_the_minimum_sample() -> None:
    t = Thresholds(min_requests=1000)
    v = judge(measured(side(7, errors=5), side(500)), t, Mode.CANARY, step_done=False)
    assert v.outcome == "fail" and "5 errors in 7 requests" in v.reason
    v = judge(measured(side(7, errors=4), side(500)), t, Mode.CANARY, step_done=False)
    assert v.outcome == "wait"


def test_shadow_judges_agreement_on_compared_rows() -> None:
    t = Thresholds(min_agreement=0.9)
    ok = measured(side(40, compared=40, agreed=38), side(40))
    bad = measured(side(40, compared=40, agreed=30), side(40))
    few = measured(side(40, compared=5, agreed=0), side(40))
    assert judge(ok, t, Mode.SHADOW, step_done=True).outcome == "pass"
    assert "agreement with stable 75.0% below 90.0%" in judge(bad, t, Mode.SHADOW,
                                                             step_done=True).reason
    assert judge(few, t, Mode.SHADOW, step_done=True).outcome == "wait"


def test_extra_metric_rules() -> None:
    t = Thresholds(metrics={"accuracy": {"min": 0.9, "max_decrease": 0.02}})
    m = measured(side(50), side(500))
    m.candidate["accuracy"], m.stable["accuracy"] = 0.95, 0.96
    assert judge(m, t, Mode.CANARY, step_done=True).outcome == "pass"
    m.candidate["accuracy"] = 0.93
    assert "accuracy decrease against stable 0.03 over 0.02" in judge(
        m, t, Mode.CANARY, step_done=True).reason
    m.candidate["accuracy"] = None  # not labelled yet: not judged, does not block
    assert judge(m, t, Mode.CANARY, step_done=True).outcome == "pass"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_error_rate": 1.5}, "--max-error-rate must be within 0-1, got 1.5"),
    ({"min_agreement": -0.1}, "--min-agreement must be within 0-1"),
    ({"max_p99_ms": 0.0}, "--max-p99-ms must be a positive number"),
    ({"max_p99_ms": float("nan")}, "--max-p99-ms must be a positive number"),
    ({"min_requests": 0}, "--min-requests must be at least 1"),
    ({"metrics": {"accuracy": {"atleast": 1.0}}}, "rules must be among"),
])
def test_bad_thresholds_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        Thresholds(**kwargs)  # type: ignore[arg-type]


def test_thresholds_round_trip() -> None:
    t = Thresholds(max_p99_ms=80.0, metrics={"accuracy": {"min": 0.9}})
    assert Thresholds.from_dict({**t.to_dict(), "provider": "builtin"}) == t



@given(n=st.integers(20, 400), stable_n=st.integers(20, 2000))
def test_a_candidate_identical_to_stable_never_fails(n: int, stable_n: int) -> None:
    m = measured(side(n), side(stable_n))
    assert judge(m, T, Mode.CANARY, step_done=True).outcome == "pass"


@given(n=st.integers(1, 400), errors=st.integers(0, 400), done=st.booleans())
def test_errors_over_the_cap_never_pass(n: int, errors: int, done: bool) -> None:
    errors = min(errors, n)
    v = judge(measured(side(n, errors=errors), side(500)), T, Mode.CANARY, step_done=done)
    if errors / n > T.max_error_rate:
        assert v.outcome != "pass"
        if errors >= T.fail_fast_errors or n >= T.min_requests:
            assert v.outcome == "fail"
    if not done:
        assert v.outcome != "pass"
