"""The gate's checks: rules on metrics, a latency budget, signature compatibility."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.errors import ModelportError
from modelport.gates.report import Check
from modelport.gates.rules import Rule

if TYPE_CHECKING:
    from modelport.client import LoadedModel

WARMUP_CALLS = 10
LATENCY_CALLS = 200
LATENCY_SECONDS = 2.0


def rule_check(rule: Rule, candidate: dict[str, float | None],
               champion: dict[str, float | None] | None) -> Check:
    """A rule judged on the candidate's metrics (and the champion's, if relative).

    Relative rules without a champion are skipped (the first version of a model has
    nothing to beat); a metric that could not be computed fails the rule.
    """
    name, observed = str(rule), candidate.get(rule.metric)
    if rule.relative and champion is None:
        return Check(name, "rule", True, observed, name, "skipped: no champion to compare with",
                     skipped=True)
    base = champion.get(rule.metric) if champion is not None else None
    if rule.relative and base is None:
        return Check(name, "rule", False, observed, name,
                     f"the champion's {rule.metric} could not be computed on these rows")
    if observed is None:
        return Check(name, "rule", False, None, name,
                     f"the candidate's {rule.metric} could not be computed on these rows")
    threshold = rule.threshold(base)
    expected = f"{rule.op} {threshold:.6g}" + (f" (champion {base:.6g})" if rule.relative else "")
    ok = rule.holds(observed, base)
    verdict = "meets" if ok else "does not meet"
    return Check(name, "rule", ok, observed, expected,
                 f"{rule.metric} {observed:.6g} {verdict} {expected}")


def latency_check(model: LoadedModel, features: Any, budget_ms: float, *,
                  calls: int = LATENCY_CALLS, max_seconds: float = LATENCY_SECONDS,
                  ) -> tuple[Check, dict[str, float]]:
    """p99 of single-row ``LoadedModel.predict`` (signature checks included) vs a budget.

    Warms up first, then runs ``calls`` predictions or as many as fit in ``max_seconds``.
    """
    rows = [features.iloc[[i]] for i in range(min(len(features), 50))]
    expected = f"p99 <= {budget_ms:g} ms"
    timings: list[float] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for i in range(WARMUP_CALLS):
                model.predict(rows[i % len(rows)])
            deadline = time.perf_counter() + max_seconds
            while len(timings) < calls and (len(timings) < 5 or time.perf_counter() < deadline):
                row = rows[len(timings) % len(rows)]
                start = time.perf_counter()
                model.predict(row)
                timings.append((time.perf_counter() - start) * 1000.0)
    except Exception as exc:  # the user's model: any failure fails the check
        return Check("latency", "latency", False, None, expected,
                     f"single-row predict failed: {type(exc).__name__}: {exc}"), {}
    ms = np.asarray(timings)
    stats = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
             "max_ms": float(ms.max()), "calls": float(len(ms))}
    ok = stats["p99_ms"] <= budget_ms
    return Check("latency", "latency", ok, round(stats["p99_ms"], 4), expected,
                 f"p99 {stats['p99_ms']:.3f} ms, p50 {stats['p50_ms']:.3f} ms over "
                 f"{len(ms)} single-row calls"), stats


def schema_problems(champion: dict[str, Any] | None, candidate: dict[str, Any] | None
                    ) -> list[str]:
    """Ways in which the candidate's input schema refuses what the champion's accepts."""
    if candidate is None or champion is None:
        # Without a schema on either side there is nothing to compare; the example
        # prediction (when the champion stored one) still tests the candidate for real.
        return []
    if champion.get("type") == "dataframe" and candidate.get("type") == "dataframe":
        return _column_problems(champion["columns"], candidate["columns"])
    if champion.get("type") != "dataframe" and candidate.get("type") != "dataframe":
        return _tensor_problems(champion, candidate)
    return []  # a table vs a tensor: only the example prediction can tell


def _column_problems(champion: list[dict[str, Any]], candidate: list[dict[str, Any]]
                     ) -> list[str]:
    from modelport.signature import castable

    had = {c["name"]: c for c in champion}
    problems = []
    for col in candidate:
        old = had.get(col["name"])
        if old is None:
            problems.append(f"the candidate requires column {col['name']!r}, "
                            "which the champion does not take")
            continue
        if not _dtype_ok(castable, old["dtype"], col["dtype"]):
            problems.append(f"column {col['name']!r}: the champion takes {old['dtype']}, "
                            f"the candidate wants {col['dtype']}")
        elif old.get("allow_nan") and not col.get("allow_nan"):
            problems.append(f"column {col['name']!r}: the champion accepts NaN, "
                            "the candidate refuses it")
    return problems


def _tensor_problems(champion: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    from modelport.signature import castable

    problems = []
    old, new = champion.get("shape") or [-1], candidate.get("shape") or [-1]
    if len(old) != len(new) or any(n not in (-1, o) for o, n in zip(old, new, strict=False)):
        problems.append(f"the champion takes shape {old}, the candidate wants {new}")
    if not _dtype_ok(castable, champion.get("dtype", "object"), candidate.get("dtype", "object")):
        problems.append(f"the champion takes {champion.get('dtype')}, "
                        f"the candidate wants {candidate.get('dtype')}")
    elif champion.get("allow_nan") and not candidate.get("allow_nan"):
        problems.append("the champion accepts NaN, the candidate refuses it")
    return problems


def _dtype_ok(castable: Any, old: str, new: str) -> bool:
    if old in ("object", "string"):
        return new in ("object", "string")
    try:
        return bool(castable(np.dtype(old), new))
    except TypeError:
        return old == new


def signature_check(candidate: LoadedModel, champion: LoadedModel) -> Check:
    """The candidate accepts what the champion accepts: schemas, then the champion's
    stored input example predicted through the candidate."""
    problems = schema_problems((champion.signature or {}).get("inputs"),
                               (candidate.signature or {}).get("inputs"))
    example = champion.input_example
    if example is None:
        note = "the champion stored no input example to try"
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                candidate.predict(example)
            note = f"the candidate predicts the champion's input example ({len(example)} rows)"
        except ModelportError as exc:
            problems.append(f"the candidate refuses the champion's input example: {exc}")
        except Exception as exc:  # the user's model failed on it
            problems.append(f"the candidate fails on the champion's input example: "
                            f"{type(exc).__name__}: {exc}")
    expected = f"accepts the input of {champion.version.uri}"
    if problems:
        return Check("signature", "signature", False, "incompatible", expected,
                     "; ".join(problems))
    return Check("signature", "signature", True, "compatible", expected, note)


__all__ = ["latency_check", "rule_check", "schema_problems", "signature_check"]
