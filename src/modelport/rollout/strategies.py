"""Rollout strategies: parse what a user typed and plan the steps a controller walks.

A plan is a list of steps; each step gives the candidate a mode and a traffic weight
and is held for ``step_seconds`` and/or ``step_requests`` candidate requests (both
when both are given), then judged. The three strategies:

- ``canary``: the user's steps (e.g. 5, 25, 50, 100), mode canary at each weight.
- ``shadow``: one step at weight 0 in mode shadow: the candidate answers copies of
  live requests, its answers are compared with stable's and never returned. Passing
  promotes it: it was proven on the very inputs stable answered.
- ``bluegreen``: two steps. First a check window in mode shadow (green answers copies
  beside blue, judged like a shadow), then an instant switch to mode bluegreen at 100,
  held one step with blue still loaded so a failure switches back at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from modelport.errors import InvalidInputError
from modelport.registry.entities import Mode

STRATEGIES = ("canary", "shadow", "bluegreen")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_STEP_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Plan:
    """What ``rollout start`` stores: the steps and how long each is held."""

    strategy: str
    steps: list[float]
    step_seconds: float | None
    step_requests: int | None

    @property
    def first_mode(self) -> Mode:
        """The mode the candidate joins with (while servers load it)."""
        return mode_at(self.strategy, 0)


def mode_at(strategy: str, step_index: int) -> Mode:
    """The candidate's mode at step ``step_index`` of a ``strategy`` rollout."""
    if strategy == "canary":
        return Mode.CANARY
    if strategy == "shadow":
        return Mode.SHADOW
    if strategy == "bluegreen":
        return Mode.SHADOW if step_index == 0 else Mode.BLUEGREEN
    raise InvalidInputError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")


def parse_steps(text: str) -> list[float]:
    """``"5,25,50,100"`` → ``[5.0, 25.0, 50.0, 100.0]``: strictly increasing percentages
    in (0, 100] ending at 100."""
    parts = [p.strip() for p in str(text).split(",")]
    if not text or not any(parts):
        raise InvalidInputError("--steps is empty; expected percentages such as 5,25,50,100")
    steps: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise InvalidInputError(
                f"--steps: {part!r} is not a number; expected percentages such as "
                "5,25,50,100") from None
        if not math.isfinite(value) or not 0.0 < value <= 100.0:
            raise InvalidInputError(f"--steps: {part!r} is outside (0, 100]")
        if steps and value <= steps[-1]:
            raise InvalidInputError(
                f"--steps must increase strictly: {part} follows {steps[-1]:g}")
        steps.append(value)
    if steps[-1] != 100.0:
        raise InvalidInputError(f"--steps must end at 100 (the candidate takes all traffic "
                                f"before promotion), but ends at {steps[-1]:g}")
    return steps


def parse_duration(text: str, what: str = "--step-duration") -> float:
    """``"500ms"``, ``"60s"``, ``"2m"``, ``"1h"``, ``"1m30s"`` or bare seconds → seconds."""
    raw = str(text).strip().lower()
    total = 0.0
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        total = float(raw)
    else:
        pos = 0
        for match in _DURATION_RE.finditer(raw):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if not raw or pos != len(raw):
            raise InvalidInputError(
                f"{what}: {text!r} is not a duration; expected e.g. 500ms, 60s, 2m, 1h30m")
    if total <= 0:
        raise InvalidInputError(f"{what} must be positive, got {text!r}")
    if total > MAX_STEP_SECONDS:
        raise InvalidInputError(f"{what}: {text!r} is longer than a week")
    return total


def plan(strategy: str, *, steps: str | None = None, step_duration: str | None = None,
         step_requests: int | None = None) -> Plan:
    """Check a strategy's options together and return its plan (precise errors)."""
    if strategy not in STRATEGIES:
        raise InvalidInputError(
            f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    seconds = parse_duration(step_duration) if step_duration is not None else None
    if step_requests is not None and step_requests < 1:
        raise InvalidInputError(f"--step-requests must be at least 1, got {step_requests}")
    if seconds is None and step_requests is None:
        raise InvalidInputError(
            "give --step-duration and/or --step-requests: how long each step is held")
    if strategy == "canary":
        parsed = parse_steps(steps if steps is not None else "5,25,50,100")
    elif steps is not None:
        raise InvalidInputError(f"--steps is for canary; {strategy} has fixed steps")
    else:
        parsed = [0.0] if strategy == "shadow" else [0.0, 100.0]
    return Plan(strategy, parsed, seconds, step_requests)


__all__ = ["STRATEGIES", "Plan", "mode_at", "parse_duration", "parse_steps", "plan"]
