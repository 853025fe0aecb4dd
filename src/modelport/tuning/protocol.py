"""How a trial's command and ``modelport tune`` talk: environment variables in, output
lines (and the files of the ``tune:`` block) out.

In: ``MODELPORT_PARAMS`` (a JSON object of the trial's parameters),
``MODELPORT_PARAM_<NAME>`` (each one as text), ``MODELPORT_TRIAL`` (its number),
``MODELPORT_TRIAL_DIR`` (an empty folder of its own), ``MODELPORT_STUDY``; plus the
registry's ``MODELPORT_HOME``/``MODELPORT_DATABASE_URL``/``MODELPORT_ARTIFACTS`` as for
every pipeline step.

Out, on stdout, a line each (anything else on stdout is just output)::

    modelport:metric accuracy=0.93 f1=0.91     final metrics (merged over metrics_file)
    modelport:report 3 0.87                    the objective's value after step 3

``report`` lines are intermediate values for the pruner: when it judges the trial
unpromising, the command is stopped (SIGTERM) and the trial marked pruned. The helpers
below print these lines from Python; any language can print them.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError

PARAMS_ENV = "MODELPORT_PARAMS"
PARAM_ENV_PREFIX = "MODELPORT_PARAM_"
TRIAL_ENV = "MODELPORT_TRIAL"
TRIAL_DIR_ENV = "MODELPORT_TRIAL_DIR"
STUDY_ENV = "MODELPORT_STUDY"
METRIC_PREFIX = "modelport:metric"
REPORT_PREFIX = "modelport:report"
_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,250}")


class ProtocolError(InvalidInputError):
    """A ``modelport:`` line that does not follow the format."""


def params() -> dict[str, Any]:
    """This trial's parameters (inside a ``modelport tune`` command), else ``{}``."""
    raw = os.environ.get(PARAMS_ENV)
    return dict(json.loads(raw)) if raw else {}


def trial_dir() -> Path | None:
    """This trial's own folder (write the model here), or None outside a trial."""
    raw = os.environ.get(TRIAL_DIR_ENV)
    return Path(raw) if raw else None


def report(step: int, value: float) -> None:
    """Tell the pruner the objective's value after ``step`` (e.g. an epoch)."""
    print(f"{REPORT_PREFIX} {int(step)} {float(value)!r}", file=sys.stdout, flush=True)


def log_metrics(**metrics: float) -> None:
    """Report the trial's final metrics (the objective metric among them)."""
    pairs = " ".join(f"{k}={float(v)!r}" for k, v in metrics.items())
    print(f"{METRIC_PREFIX} {pairs}", file=sys.stdout, flush=True)


def parse_line(line: str) -> tuple[str, Any] | None:
    """``("metric", {name: value})``, ``("report", (step, value))`` or None for any
    other line; raises ``ProtocolError`` for a malformed ``modelport:`` line."""
    text = line.strip()
    if text.startswith(METRIC_PREFIX + " ") or text == METRIC_PREFIX:
        return "metric", _metrics(text[len(METRIC_PREFIX):].split())
    if text.startswith(REPORT_PREFIX + " ") or text == REPORT_PREFIX:
        parts = text[len(REPORT_PREFIX):].split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ProtocolError(f"{text[:120]!r}: expected '{REPORT_PREFIX} STEP VALUE' with "
                                "a whole-number step")
        return "report", (int(parts[0]), _number(parts[1], text))
    return None


def _metrics(pairs: list[str]) -> dict[str, float]:
    if not pairs:
        raise ProtocolError(f"'{METRIC_PREFIX}' needs NAME=VALUE pairs")
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _NAME.fullmatch(name):
            raise ProtocolError(f"{pair[:120]!r}: expected NAME=VALUE in a "
                                f"'{METRIC_PREFIX}' line")
        out[name] = _number(value, pair)
    return out


def _number(text: str, context: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ProtocolError(f"{context[:120]!r}: {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise ProtocolError(f"{context[:120]!r}: {text!r} is not a finite number")
    return value


def param_env(values: dict[str, Any]) -> dict[str, str]:
    """The environment variables that hand ``values`` to a command."""
    env = {PARAMS_ENV: json.dumps(values)}
    env.update({f"{PARAM_ENV_PREFIX}{k}": as_text(v) for k, v in values.items()})
    return env


def as_text(value: Any) -> str:
    """A parameter value as a command line or environment variable shows it."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return ""
    return str(value)


__all__ = [
    "PARAMS_ENV",
    "PARAM_ENV_PREFIX",
    "STUDY_ENV",
    "TRIAL_DIR_ENV",
    "TRIAL_ENV",
    "ProtocolError",
    "as_text",
    "log_metrics",
    "param_env",
    "params",
    "parse_line",
    "report",
    "trial_dir",
]
