"""Alert rules: a small grammar parsed by hand (never ``eval``), and the rules file.

An expression is ``METRIC[(FEATURE)] OP NUMBER[%] [over DURATION]``::

    mse > 0.5 over 1h
    psi(petal_length) > 0.2
    error_rate > 1%
    p99_latency_ms > 50
    accuracy < 0.9 over 24h
    drift_share > 0.3

``OP`` is one of ``> >= < <= == !=``; ``%`` divides the number by 100; the window
defaults to one hour. The rules file (``alerts.yaml``) lists rules per endpoint::

    endpoints:
      iris:
        - name: mse-high
          expr: mse > 0.5 over 1h
          for: 5m            # the condition must hold this long before it fires
          severity: warning  # info | warning | critical
          action: none       # none | abort_rollout | rollback
          webhook: http://127.0.0.1:9093/hook
          on_alert: run pipeline retrain   # retrain (modelport.monitoring.onalert)
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.monitoring.onalert import KEYS as ON_ALERT_KEYS
from modelport.monitoring.onalert import OnAlert, parse_on_alert
from modelport.uri import validate_name

REALIZED = ("accuracy", "f1", "precision", "recall", "mse", "rmse", "mae", "r2", "mape")
FEATURE_DRIFT = ("psi", "jensenshannon", "drift_statistic", "drift_p_value", "missing_rate")
DRIFT = ("drift_share", "drifted_features", "prediction_psi")
TRAFFIC = ("error_rate", "requests", "errors", "p50_latency_ms", "p90_latency_ms",
           "p95_latency_ms", "p99_latency_ms")
METRICS = REALIZED + FEATURE_DRIFT + DRIFT + TRAFFIC
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne}
SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("none", "abort_rollout", "rollback")
DEFAULT_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(days=90)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TOKEN = re.compile(r"\s*(?:(?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)|(?P<op>>=|<=|==|!=|>|<)"
                    r"|(?P<punct>[()%]))")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_RULE_KEYS = {"name", "expr", "for", "severity", "action", "webhook", "description",
              *ON_ALERT_KEYS}


@dataclass(frozen=True)
class Condition:
    """A parsed expression: ``metric(feature) op threshold`` over ``window``."""

    metric: str
    op: str
    threshold: float
    feature: str | None = None
    window: timedelta = DEFAULT_WINDOW

    def breached(self, value: float) -> bool:
        """Whether ``value`` meets the condition (the alert's trigger)."""
        return OPERATORS[self.op](value, self.threshold)

    @property
    def subject(self) -> str:
        """The metric as written, with its feature: ``psi(age)``."""
        return f"{self.metric}({self.feature})" if self.feature else self.metric


@dataclass(frozen=True)
class Rule:
    """One alert rule of one endpoint."""

    endpoint: str
    name: str
    expr: str
    condition: Condition
    for_: timedelta = timedelta(0)
    severity: str = "warning"
    action: str = "none"
    webhook: str | None = None
    description: str = ""
    on_alert: OnAlert | None = None  # what its firing triggers (a retraining pipeline)


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """``30s``, ``5m``, ``1h``, ``7d`` or ``1h30m`` as a timedelta (0 allowed)."""
    raw = str(text).strip().lower()
    pos, seconds = 0, 0.0
    for m in _DURATION.finditer(raw):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not raw or pos != len(raw):
        raise InvalidInputError(f"invalid {what} {text!r}: use a number with s, m, h or d, "
                                "e.g. 30s, 5m, 1h or 1h30m")
    out = timedelta(seconds=seconds)
    if out > MAX_WINDOW:
        raise InvalidInputError(f"{what} {text!r} is longer than {MAX_WINDOW.days} days")
    return out


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if not text[pos:].strip():
                break
            col = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise InvalidInputError(f"invalid alert expression {text!r}: unexpected "
                                    f"{text[col]!r} at column {col + 1}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def parse_expression(text: str) -> Condition:
    """Parse ``METRIC[(FEATURE)] OP NUMBER[%] [over DURATION]`` (InvalidInputError names
    the column and what was expected)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("an alert expression must be non-empty text, e.g. "
                                "'error_rate > 1%'")
    toks = _tokens(text)
    i = 0

    def fail(expected: str) -> InvalidInputError:
        got = f"{toks[i][1]!r} at column {toks[i][2] + 1}" if i < len(toks) else "the end"
        return InvalidInputError(f"invalid alert expression {text!r}: expected {expected}, "
                                 f"got {got}")

    def take(kind: str, value: str | None = None) -> str | None:
        nonlocal i
        if i < len(toks) and toks[i][0] == kind and (value is None or toks[i][1] == value):
            i += 1
            return toks[i - 1][1]
        return None

    metric = take("name")
    if metric is None:
        raise fail("a metric name")
    metric = metric.lower()
    if metric not in METRICS:
        raise InvalidInputError(f"invalid alert expression {text!r}: unknown metric "
                                f"{metric!r}; known: {', '.join(METRICS)}")
    feature = None
    if take("punct", "("):
        feature = take("name")
        if feature is None:
            raise fail("a feature name")
        if not take("punct", ")"):
            raise fail("')'")
    if metric in FEATURE_DRIFT and feature is None:
        raise InvalidInputError(f"invalid alert expression {text!r}: {metric} needs a "
                                f"feature, e.g. {metric}(petal_length)")
    if metric not in FEATURE_DRIFT and feature is not None:
        raise InvalidInputError(f"invalid alert expression {text!r}: {metric} takes no "
                                "feature")
    op = take("op")
    if op is None:
        raise fail(f"a comparison ({' '.join(OPERATORS)})")
    number = take("num")
    if number is None:
        raise fail("a number")
    threshold = float(number)
    if take("punct", "%"):
        threshold /= 100.0
    if not math.isfinite(threshold):
        raise InvalidInputError(f"invalid alert expression {text!r}: the threshold must be "
                                "finite")
    window = DEFAULT_WINDOW
    if take("name", "over"):
        dur = take("name") or ""
        if not dur and i < len(toks) and toks[i][0] == "num" and i + 1 < len(toks):
            dur = toks[i][1] + toks[i + 1][1]  # "1 h" is tokenised as a number and a name
            i += 2
        if not dur:
            raise fail("a window such as 1h")
        window = parse_duration(dur, "window")
        if window <= timedelta(0):
            raise InvalidInputError(f"invalid alert expression {text!r}: the window must "
                                    "be positive")
    if i < len(toks):
        raise fail("the end of the expression (or 'over DURATION')")
    return Condition(metric, op, threshold, feature, window)


def parse_rule(endpoint: str, data: Any, where: str = "rule", base: Path | None = None) -> Rule:
    """One rule from its mapping in the rules file (a relative ``pipeline_file`` is
    taken from ``base``, the folder of the file the rule is in)."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"{where}: a rule must be a mapping with name and expr")
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise InvalidInputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}"
                                f"; known: {', '.join(sorted(_RULE_KEYS))}")
    for key in ("name", "expr"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InvalidInputError(f"{where}: {key!r} is required and must be text")
    name = validate_name(data["name"], "alert name")
    try:
        cond = parse_expression(data["expr"])
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where} ({name}): {exc}") from None
    severity, action = data.get("severity", "warning"), data.get("action", "none")
    if severity not in SEVERITIES:
        raise InvalidInputError(f"{where} ({name}): severity must be one of "
                                f"{', '.join(SEVERITIES)}, got {severity!r}")
    if action not in ACTIONS:
        raise InvalidInputError(f"{where} ({name}): action must be one of "
                                f"{', '.join(ACTIONS)}, got {action!r}")
    webhook = data.get("webhook")
    if webhook is not None and not (isinstance(webhook, str)
                                    and re.match(r"https?://[^\s/]+", webhook)):
        raise InvalidInputError(f"{where} ({name}): webhook must be an http(s) URL, got "
                                f"{webhook!r}")
    for_ = parse_duration(str(data.get("for", "0s")), f"{where} ({name}) 'for'")
    on_alert = parse_on_alert(data, f"{where} ({name})", cond.window, base)
    return Rule(endpoint, name, data["expr"].strip(), cond, for_, severity, action, webhook,
                str(data.get("description", "")), on_alert)


def parse_rules(data: Any, source: str = "rules", base: Path | None = None) -> list[Rule]:
    """Every rule of a parsed rules document (``endpoints: {NAME: [rule, ...]}``)."""
    if not isinstance(data, dict) or not isinstance(data.get("endpoints"), dict):
        raise InvalidInputError(f"{source}: expected a mapping with 'endpoints: "
                                "{ENDPOINT: [rules]}'")
    rules: list[Rule] = []
    for endpoint, items in data["endpoints"].items():
        validate_name(str(endpoint), "endpoint name")
        if not isinstance(items, list):
            raise InvalidInputError(f"{source}: endpoint {endpoint!r} needs a list of rules")
        seen: set[str] = set()
        for n, item in enumerate(items, 1):
            rule = parse_rule(str(endpoint), item, f"{source}: {endpoint} rule {n}", base)
            if rule.name in seen:
                raise InvalidInputError(f"{source}: endpoint {endpoint!r} has two rules "
                                        f"named {rule.name!r}")
            seen.add(rule.name)
            rules.append(rule)
    return rules


def load_rules(path: str | Path) -> list[Rule]:
    """Read and check a rules file (YAML); nothing is half-loaded on an error."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read rules file {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"rules file {p} is not valid YAML: {exc}") from None
    return parse_rules(data, str(p), p.parent)


__all__ = ["ACTIONS", "METRICS", "Condition", "Rule", "load_rules", "parse_duration",
           "parse_expression", "parse_rule", "parse_rules"]
