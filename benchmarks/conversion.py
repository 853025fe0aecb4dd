"""Conversion benchmark (issue 8): equivalence of ONNX conversions, and what int8 costs.

Run ``.venv/bin/python benchmarks/conversion.py`` (about a minute). For each model, in a
temp registry: register the fitted model, ``modelport.convert`` it to ONNX with the
default tolerances, and report the equivalence on the input example (50 rows) and on a
held-out evaluation set (the rest): label agreement for classifiers, max abs diff for
regressors. Then the int8 dynamic quantization of the two models with weights (the MLP
and a wide logistic regression): size, single-row latency (median of 200 calls) and
accuracy, ONNX float32 vs ONNX int8, side by side. Results also go to
``benchmarks/results/conversion.json``.
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
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

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
        ("GradientBoostingRegressor", GradientBoostingRegressor(random_state=0), rX, ry),
        ("Ridge", Ridge(), rX, ry),
        ("XGBClassifier", XGBClassifier(n_estimators=100, max_depth=6), cX, cy),
        ("LGBMClassifier", LGBMClassifier(n_estimators=100, verbose=-1), cX, cy),
        ("MLPClassifier 256x128", MLPClassifier((256, 128), max_iter=300, random_state=0),
         cX, cy),
        ("LogisticRegression 300 features", LogisticRegression(max_iter=2000), wide_X, wide_y),
    ]


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
        reg.close()
    print("\n| model | target | inputs | rows | label agreement | max abs diff | passed |")
    print("|---|---|---|--:|--:|--:|---|")
    for r in rows:
        agree = r["eval_agreement"]
        diff = r["eval_max_abs_diff"]
        print(f"| {r['model']} | {r['target']} | {r['precision']} | {r['eval_rows']} | "
              f"{'-' if agree is None else f'{agree:.2%}'} | "
              f"{'-' if diff is None else f'{diff:.3g}'} | {r['passed']} |")
    print("\n| model | size f32 → int8 | 1-row latency ms f32 → int8 | accuracy f32 → int8 |")
    print("|---|--:|--:|--:|")
    for r in rows:
        q = r["quantized"]
        if q:
            print(f"| {r['model']} | {q['bytes_before']:,} → {q['bytes_after']:,} | "
                  f"{q['latency_ms_before']:.3f} → {q['latency_ms_after']:.3f} | "
                  f"{q['accuracy_before']:.4f} → {q['accuracy_after']:.4f} |")
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "conversion.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    np.random.seed(0)
    main()
