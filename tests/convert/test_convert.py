"""``modelport convert``: real conversions, real equivalence checks, real registrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, make_classification, make_regression

from modelport.client import Registry
from modelport.convert.service import convert
from modelport.errors import GateFailedError, InvalidInputError, UnsupportedModelError


@pytest.fixture
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def test_logistic_regression_to_onnx_registers_a_linked_equivalent_version(
        sqlite_registry: Registry, iris: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    model = LogisticRegression(max_iter=1000).fit(X, y)
    src = sqlite_registry.log_model(model, "iris", input_example=X[:5], params={"C": 1.0})
    eval_file = tmp_path / "eval.csv"
    X.assign(species=y).to_csv(eval_file, index=False)
    result = convert(sqlite_registry, "iris/1", data=eval_file, target="species")
    assert result.passed and result.precision == "double"
    assert result.checks["eval_data"].rows == 150
    assert result.checks["eval_data"].label_agreement == 1.0
    v = result.version
    assert v is not None and (v.version, v.flavor) == (2, "onnx")
    assert v.tags["converted_from"] == src.uri and v.tags["conversion"] == "onnx"
    assert v.metrics["equivalence_label_agreement"] == 1.0 and v.params == {"C": 1.0}
    onnx_model = sqlite_registry.load_model("iris/2")
    assert (onnx_model.predict(X) == model.predict(X)).all()


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm"])
def test_boosters_to_onnx(sqlite_registry: Registry, lib: str) -> None:
    X, y = make_classification(400, 8, random_state=0)
    X = X.astype(np.float32).astype(np.float64)  # float32-exact inputs: splits agree
    if lib == "xgboost":
        from xgboost import XGBClassifier
        model: Any = XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
    else:
        from lightgbm import LGBMClassifier
        model = LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y)
    sqlite_registry.log_model(model, "b", input_example=X[:50])
    result = convert(sqlite_registry, "b/1")
    assert result.passed and result.precision == "float"
    assert result.checks["input_example"].label_agreement == 1.0
    assert result.version is not None and result.version.flavor == "onnx"


def test_a_failed_check_registers_nothing(sqlite_registry: Registry) -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = make_regression(300, 5, noise=3, random_state=0)
    model = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X, y)
    sqlite_registry.log_model(model, "r", input_example=X[:100])
    with pytest.raises(GateFailedError, match="not equivalent") as err:
        convert(sqlite_registry, "r/1", tolerance=0.0)
    report = err.value.details["report"]
    assert report["passed"] is False and report["checks"]["input_example"]["max_abs_diff"] >= 0
    assert [v.version for v in sqlite_registry.list("r")] == [1]
    # With a stated tolerance the same conversion passes and says by how much.
    ok = convert(sqlite_registry, "r/1", tolerance=1e-3)
    assert ok.passed and ok.checks["input_example"].max_abs_diff is not None
    assert ok.checks["input_example"].max_abs_diff <= 1e-3


def test_quantized_graph_reports_size_latency_and_accuracy(
        sqlite_registry: Registry, tmp_path: Path) -> None:
    from sklearn.neural_network import MLPClassifier

    X, y = make_classification(600, 30, n_informative=10, random_state=1)
    model = MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=200, random_state=0).fit(X, y)
    sqlite_registry.log_model(model, "mlp", input_example=X[:20])
    eval_file = tmp_path / "eval.parquet"
    pd.DataFrame(X, columns=[f"f{i}" for i in range(30)]).assign(label=y).to_parquet(eval_file)
    result = convert(sqlite_registry, "mlp/1", data=eval_file, target="label",
                     quantized=True, min_agreement=0.9)
    q = result.quantized
    assert q is not None and result.target == "onnx-int8"
    assert q.bytes_after < q.bytes_before / 2  # int8 weights: about a quarter
    assert q.latency_ms_before > 0 and q.latency_ms_after > 0
    assert q.accuracy_before is not None and abs(q.accuracy_after - q.accuracy_before) < 0.1
    assert result.version is not None and result.version.tags["conversion"] == "onnx-int8"


def test_unsupported_models_and_bad_arguments(sqlite_registry: Registry, iris: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    import modelport

    class Doubler(modelport.PythonModel):
        def predict(self, X: Any) -> Any:
            return np.asarray(X) * 2

    X, y = iris
    sqlite_registry.log_model(Doubler(), "py", input_example=X[:3], trusted=True)
    with pytest.raises(UnsupportedModelError, match="supported"):
        convert(sqlite_registry, "py/1", trusted=True)
    sqlite_registry.log_model(LogisticRegression(max_iter=500).fit(X, y), "lr")
    with pytest.raises(InvalidInputError, match="no input example"):
        convert(sqlite_registry, "lr/1")
    with pytest.raises(InvalidInputError, match="supported targets"):
        convert(sqlite_registry, "lr/1", to="tflite")
    with pytest.raises(InvalidInputError, match="min-agreement"):
        convert(sqlite_registry, "lr/1", min_agreement=2)
    assert [v.version for v in sqlite_registry.list("lr")] == [1]
