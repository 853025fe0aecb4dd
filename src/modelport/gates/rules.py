"""Gate rules: a tiny, safe grammar (parsed by hand, never ``eval``-ed).

::

    rule     := METRIC OP expr
    OP       := ">=" | ">" | "<=" | "<" | "=="
    expr     := number | "champion" [ ("+" | "-" | "*") number ]
    number   := ["+" | "-"] digits ["." digits] [("e" | "E") ["+" | "-"] digits]

``champion`` is the champion's value of the same metric, recomputed on the same rows.
Examples: ``accuracy >= 0.90``, ``f1 >= champion - 0.01``, ``rmse <= champion * 1.05``,
``r2 > 0.5``. Names are case-insensitive; ``==`` compares with a relative tolerance of
1e-9 (metrics are floats). Numbers must be finite.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from modelport.errors import InvalidInputError
from modelport.gates.metrics import ALL_METRICS

MAX_RULE_CHARS = 200
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
}
ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
}
GRAMMAR = "METRIC OP (NUMBER | champion [+|-|* NUMBER]), e.g. 'f1 >= champion - 0.01'"

_TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>>=|<=|==|>|<)|(?P<arith>[-+*])"
)


@dataclass(frozen=True)
class Rule:
    """One parsed rule: ``metric op value`` or ``metric op champion [arith value]``."""

    metric: str
    op: str
    value: float | None = None  # the threshold, for absolute rules
    arith: str | None = None  # with champion: how ``operand`` adjusts its value
    operand: float | None = None

    @property
    def relative(self) -> bool:
        """Whether the rule compares with the champion."""
        return self.value is None

    def threshold(self, champion: float | None) -> float:
        """The number the metric is compared with (``champion`` needed if relative)."""
        if self.value is not None:
            return self.value
        if champion is None:
            raise InvalidInputError(f"rule {self}: no champion value to compare with")
        if self.arith is None or self.operand is None:
            return champion
        return ARITHMETIC[self.arith](champion, self.operand)

    def holds(self, observed: float, champion: float | None = None) -> bool:
        """Whether ``observed`` satisfies the rule."""
        return OPERATORS[self.op](observed, self.threshold(champion))

    def __str__(self) -> str:
        if self.value is not None:
            return f"{self.metric} {self.op} {self.value!r}"
        tail = f" {self.arith} {self.operand!r}" if self.arith else ""
        return f"{self.metric} {self.op} champion{tail}"


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _error(text, f"unexpected character {text[pos]!r} at column {pos + 1}")
        kind = m.lastgroup or ""
        if kind != "space":
            out.append((kind, m.group(), pos))
        pos = m.end()
    return out


def _error(text: str, why: str) -> InvalidInputError:
    return InvalidInputError(f"invalid rule {text[:MAX_RULE_CHARS]!r}: {why}; expected {GRAMMAR}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def take(self, kind: str, what: str) -> str:
        if self.i >= len(self.tokens):
            raise _error(self.text, f"expected {what} at the end")
        tkind, value, pos = self.tokens[self.i]
        if tkind != kind:
            raise _error(self.text, f"expected {what} at column {pos + 1}, got {value!r}")
        self.i += 1
        return value

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def number(self) -> float:
        sign = 1.0
        tok = self.peek()
        if tok is not None and tok[0] == "arith" and tok[1] in "+-":
            sign = -1.0 if tok[1] == "-" else 1.0
            self.i += 1
        value = sign * float(self.take("number", "a number"))
        if not math.isfinite(value):
            raise _error(self.text, "numbers must be finite")
        return value

    def rule(self) -> Rule:
        metric = self.take("name", "a metric name").lower()
        if metric not in ALL_METRICS:
            raise unknown_metric(metric, self.text)
        op = self.take("op", "a comparison (>=, >, <=, <, ==)")
        tok = self.peek()
        if tok is not None and tok[0] == "name":
            if tok[1].lower() != "champion":
                raise _error(self.text, f"expected a number or 'champion' at column "
                                        f"{tok[2] + 1}, got {tok[1]!r}")
            self.i += 1
            rule = Rule(metric, op)
            tok = self.peek()
            if tok is not None:
                arith = self.take("arith", "+, - or * after 'champion'")
                rule = Rule(metric, op, arith=arith, operand=self.number())
        else:
            rule = Rule(metric, op, value=self.number())
        if self.peek() is not None:
            _, value, pos = self.tokens[self.i]
            raise _error(self.text, f"unexpected {value!r} at column {pos + 1}")
        return rule


def unknown_metric(name: str, text: str = "") -> InvalidInputError:
    """The error for a metric name modelport does not compute (with a suggestion)."""
    close = difflib.get_close_matches(name, ALL_METRICS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = f" in rule {text!r}" if text else ""
    return InvalidInputError(f"unknown metric {name!r}{where}{hint}; available: "
                             + ", ".join(ALL_METRICS))


def parse_rule(text: str) -> Rule:
    """Parse one rule such as ``accuracy >= 0.9`` (InvalidInputError if malformed)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"empty rule; expected {GRAMMAR}")
    if len(text) > MAX_RULE_CHARS:
        raise InvalidInputError(f"rule is longer than {MAX_RULE_CHARS} characters")
    return _Parser(text).rule()


def parse_rules(texts: tuple[str, ...] | list[str]) -> list[Rule]:
    """Parse every rule, in order; the first malformed one raises."""
    return [parse_rule(t) if isinstance(t, str) else _not_text(t) for t in texts]


def _not_text(value: object) -> Rule:
    raise InvalidInputError(f"a rule must be a string, got {type(value).__name__}")


__all__ = ["GRAMMAR", "OPERATORS", "Rule", "parse_rule", "parse_rules", "unknown_metric"]
