"""Conversion benchmark (issue 8): equivalence of ONNX and PMML conversions, and what int8
and PMML cost.

Run ``.venv/bin/python benchmarks/conversion.py`` (a few minutes; PMML needs Java). For
each model, in a temp registry: register the fitted model, ``modelport.convert`` it to
ONNX and to PMML with the default tolerances, and report the equivalence on the input
example (50 rows) and on a held-out evaluation set (the rest): label agreement for
classifiers, max abs diff for regressors. Then the int8 dynamic quantization of the two
models with weights (the MLP and a wide logistic regression): size, single-row latency
(median of 200 calls) and accuracy, ONNX float32 vs ONNX int8, side by side. For each
PMML version: the latency of one ``predict`` of 1 row and of 1,000 rows (median of
200 and 30 calls after 30 warm-up calls, through ``load_model``, signature check
included) against the source model's. Results also go to ``benchmarks/results/conversion.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

HERE = Path(__file__).parent


def _models() -> list[tuple[str, Any, Any, Any]]:
    from lightgbm import LGBMClassifier
    from xgboost import XGBClassifier

    iris_X, iris_y = load_iris(return_X_y=True)
    cX, cy = make_classification(3000, 20, n_informative=10, random_state=0)
    rX, ry = make_regression(3000, 20, noise=5, random_state=0)
    wide_X, wide_y = make_classification(3000, 300, n_informative=50, random_state=2)
    return [
        ("LogisticRegression (iris)", LogisticRegression(max_iter=1000), iris_X, iris_y),
        ("RandomForestClassifier 100x10", RandomForestClassifier(100, max_depth=10,
                                                                 random_state=0), cX, cy),
        ("DecisionTreeClassifier depth 8", DecisionTreeClassifier(max_depth=8,
                                                                  random_state=0), cX, cy),
        ("GradientBoostingClassifier", GradientBoostingClassifier(random_state=0), cX, cy),
        ("GradientBoostingRegressor", GradientBoostingRegressor(random_state=0), rX, ry),
        ("Ridge", Ridge(), rX, ry),
        ("XGBClassifier", XGBClassifier(n_estimators=100, max_depth=6), cX, cy),
        ("LGBMClassifier", LGBMClassifier(n_estimators=100, verbose=-1), cX, cy),
        ("MLPClassifier 256x128", MLPClassifier((256, 128), max_iter=300, random_state=0),
         cX, cy),
        ("LogisticRegression 300 features", LogisticRegression(max_iter=2000), wide_X, wide_y),
    ]


ONNX_ONLY = ("DecisionTree", "GradientBoostingClassifier")  # new rows: PMML only


def _latency(reg: Any, uri: str, X: Any) -> dict[str, float]:
    """Median ms of one predict of 1 row and of 1,000 rows, through load_model."""
    from modelport.convert.quantize import single_row_latency_ms

    model = reg.load_model(uri)
    rows = np.resize(np.asarray(X), (1000, np.asarray(X).shape[1]))
    for _ in range(30):  # warm, as a serving process is: the JVM compiles hot paths late
        model.predict(rows)
    return {"1": single_row_latency_ms(model.predict, rows[:1]),
            "1000": single_row_latency_ms(model.predict, rows, repeats=30)}


def _pmml_row(reg: Any, label: str, name: str, eval_file: Path, X: Any) -> dict[str, Any]:
    from modelport.convert.service import convert
    from modelport.errors import GateFailedError, UnsupportedModelError

    try:
        out = convert(reg, f"{name}/1", to="pmml", data=eval_file, target="label")
        data = out.to_dict()
    except GateFailedError as exc:
        data = exc.details["report"]
    except UnsupportedModelError as exc:
        return {"model": label, "target": "pmml", "passed": False, "unsupported": str(exc)}
    checks = data["checks"]
    row = {"model": label, "target": "pmml", "precision": data["precision"],
           "passed": data["passed"], "eval_rows": checks["eval_data"]["rows"],
           "example_agreement": checks["input_example"]["label_agreement"],
           "eval_agreement": checks["eval_data"]["label_agreement"],
           "example_max_abs_diff": checks["input_example"]["max_abs_diff"],
           "eval_max_abs_diff": checks["eval_data"]["max_abs_diff"], "quantized": None}
    if data["version"]:
        row["latency_ms"] = {"source": _latency(reg, f"{name}/1", X),
                             "pmml": _latency(reg, data["version"], X)}
    return row


def main() -> None:
    import modelport
    from modelport.convert.service import convert
    from modelport.errors import GateFailedError

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="modelport-conv-") as tmp:
        os.environ["MODELPORT_HOME"] = tmp
        reg = modelport.Registry()
        for i, (label, model, X, y) in enumerate(_models()):
            X_train, X_eval, y_train, y_eval = train_test_split(
                X, y, test_size=min(500, len(X) // 3), random_state=0)
            model.fit(X_train, y_train)
            name = f"m{i}"
            reg.log_model(model, name, input_example=X_train[:50])
            eval_file = Path(tmp) / f"{name}.parquet"
            cols = [f"f{j}" for j in range(X.shape[1])]
            pd.DataFrame(X_eval, columns=cols).assign(label=y_eval).to_parquet(eval_file)
            for quantized in (False, True):
                if quantized and "MLP" not in label and "300 features" not in label:
                    continue
                if label.startswith(ONNX_ONLY):
                    continue
                try:
                    out = convert(reg, f"{name}/1", data=eval_file, target="label",
                                  quantized=quantized, min_agreement=0.95 if quantized else 1)
                    data = out.to_dict()
                except GateFailedError as exc:
                    data = exc.details["report"]
                checks = data["checks"]
                row = {"model": label, "target": data["target"], "precision": data["precision"],
                       "passed": data["passed"], "eval_rows": checks["eval_data"]["rows"],
                       "example_agreement": checks["input_example"]["label_agreement"],
                       "eval_agreement": checks["eval_data"]["label_agreement"],
                       "example_max_abs_diff": checks["input_example"]["max_abs_diff"],
                       "eval_max_abs_diff": checks["eval_data"]["max_abs_diff"],
                       "quantized": data["quantized"]}
                rows.append(row)
                print(json.dumps(row))
            row = _pmml_row(reg, label, name, eval_file, X_eval)
            rows.append(row)
            print(json.dumps(row))
        reg.close()
    print("\n| model | target | inputs | rows | label agreement | max abs diff | passed |")
    print("|---|---|---|--:|--:|--:|---|")
    for r in rows:
        if "unsupported" in r:
            print(f"| {r['model']} | {r['target']} | - | - | - | - | unsupported |")
            continue
        agree = r["eval_agreement"]
        diff = r["eval_max_abs_diff"]
        print(f"| {r['model']} | {r['target']} | {r['precision']} | {r['eval_rows']} | "
              f"{'-' if agree is None else f'{agree:.2%}'} | "
              f"{'-' if diff is None else f'{diff:.3g}'} | {r['passed']} |")
    print("\n| model | size f32 → int8 | 1-row latency ms f32 → int8 | accuracy f32 → int8 |")
    print("|---|--:|--:|--:|")
    for r in rows:
        q = r.get("quantized")
        if q:
            print(f"| {r['model']} | {q['bytes_before']:,} → {q['bytes_after']:,} | "
                  f"{q['latency_ms_before']:.3f} → {q['latency_ms_after']:.3f} | "
                  f"{q['accuracy_before']:.4f} → {q['accuracy_after']:.4f} |")
    print("\n| model | 1 row: source → PMML (ms) | 1,000 rows: source → PMML (ms) |")
    print("|---|--:|--:|")
    for r in rows:
        lat = r.get("latency_ms")
        if lat:
            print(f"| {r['model']} | {lat['source']['1']:.3f} → {lat['pmml']['1']:.3f} | "
                  f"{lat['source']['1000']:.2f} → {lat['pmml']['1000']:.2f} |")
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "conversion.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    np.random.seed(0)
    main()
