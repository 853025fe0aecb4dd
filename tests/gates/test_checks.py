"""Rule checks, signature compatibility of input schemas, and the latency measurement."""

from __future__ import annotations

import pandas as pd
from sklearn.linear_model import LogisticRegression

from modelport.client import Registry
from modelport.gates.checks import latency_check, rule_check, schema_problems
from modelport.gates.rules import parse_rule


def _frame(*cols: tuple[str, str, bool]) -> dict:
    return {"type": "dataframe",
            "columns": [{"name": n, "dtype": d, "allow_nan": nan} for n, d, nan in cols]}


def test_rule_checks() -> None:
    ok = rule_check(parse_rule("f1 >= champion - 0.01"), {"f1": 0.895}, {"f1": 0.9})
    assert ok.passed and ok.expected == ">= 0.89 (champion 0.9)"
    bad = rule_check(parse_rule("rmse <= champion * 1.05"), {"rmse": 2.2}, {"rmse": 2.0})
    assert not bad.passed and "does not meet <= 2.1" in bad.message
    skipped = rule_check(parse_rule("f1 >= champion"), {"f1": 0.5}, None)
    assert skipped.passed and skipped.skipped
    missing = rule_check(parse_rule("roc_auc >= champion"), {"roc_auc": 0.9}, {"roc_auc": None})
    assert not missing.passed and "champion's roc_auc could not be computed" in missing.message


def test_same_or_wider_schemas_are_compatible() -> None:
    champion = _frame(("a", "float64", False), ("b", "int64", False))
    assert schema_problems(champion, champion) == []
    # The candidate may need fewer columns and accept int data as float.
    assert schema_problems(champion, _frame(("b", "float64", True))) == []
    assert schema_problems(None, champion) == [] and schema_problems(champion, None) == []


def test_narrower_schemas_are_not() -> None:
    champion = _frame(("a", "float64", True), ("b", "string", False))
    problems = schema_problems(champion, _frame(("a", "float64", False), ("b", "int64", False),
                                                ("c", "float64", False)))
    assert problems == [
        "column 'a': the champion accepts NaN, the candidate refuses it",
        "column 'b': the champion takes string, the candidate wants int64",
        "the candidate requires column 'c', which the champion does not take",
    ]


def test_tensor_schemas() -> None:
    champion = {"type": "tensor", "dtype": "float32", "shape": [-1, 4]}
    assert schema_problems(champion, {"type": "tensor", "dtype": "float64", "shape": [-1, 4]}
                           ) == []
    problems = schema_problems(champion, {"type": "tensor", "dtype": "int64", "shape": [-1, 5]})
    assert len(problems) == 2 and "shape [-1, 4]" in problems[0]


def test_latency_is_measured_through_the_signature(sqlite_registry: Registry) -> None:
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    sqlite_registry.log_model(LogisticRegression().fit(X, [0, 1, 0, 1]), "lat",
                              input_example=X)
    model = sqlite_registry.load_model("lat/1")
    check, stats = latency_check(model, X, 10_000, calls=20)
    assert check.passed and stats["calls"] == 20 and stats["p50_ms"] <= stats["p99_ms"]
    broken, _ = latency_check(model, X.rename(columns={"a": "z"}), 10_000, calls=5)
    assert not broken.passed and "missing column 'a'" in broken.message
