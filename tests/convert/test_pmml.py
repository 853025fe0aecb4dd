"""``modelport convert --to pmml``: real sklearn2pmml conversions, real JPMML evaluation,
real registrations. Each conversion runs a ``java`` process; the evaluating JVM starts
once per test process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression

import modelport
from modelport.client import Registry
from modelport.convert.service import convert
from modelport.errors import GateFailedError, InvalidInputError, UnsupportedModelError
from tests.flavors.test_pmml import require_java

pytest.importorskip("jpmml_evaluator")
pytest.importorskip("sklearn2pmml")


@pytest.fixture(autouse=True)
def _java() -> None:
    require_java()


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(400, 6, n_informative=4, random_state=0)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]), y


def _eval_file(tmp_path: Path, X: pd.DataFrame, y: np.ndarray) -> Path:
    path = tmp_path / "eval.parquet"
    X.assign(label=y).to_parquet(path)
    return path


def test_logistic_regression_to_pmml_registers_a_linked_equivalent_version(
        sqlite_registry: Registry, table: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = table
    model = LogisticRegression(max_iter=1000).fit(X, y)
    src = sqlite_registry.log_model(model, "lr", input_example=X[:20], params={"C": 1.0})
    result = convert(sqlite_registry, "lr/1", to="pmml",
                     data=_eval_file(tmp_path, X, y), target="label")
    assert result.passed and (result.target, result.precision) == ("pmml", "double")
    assert result.checks["eval_data"].rows == 400
    assert result.checks["eval_data"].label_agreement == 1.0
    assert result.checks["input_example"].label_agreement == 1.0
    v = result.version
    assert v is not None and (v.version, v.flavor) == (2, "pmml")
    assert v.tags["converted_from"] == src.uri and v.tags["conversion"] == "pmml"
    assert v.metrics["equivalence_label_agreement"] == 1.0 and v.params == {"C": 1.0}
    assert result.to_dict()["version"] == "models:/lr/2"
    pmml = modelport.load_model("lr/2")
    assert pmml.flavor.name == "pmml"
    np.testing.assert_array_equal(pmml.predict(X), model.predict(X))
    np.testing.assert_allclose(pmml.native.predict_proba(X), model.predict_proba(X),
                               atol=1e-9)


def test_random_forest_on_a_tensor_signature(sqlite_registry: Registry, table: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = table
    A = X.to_numpy()  # no column names: the PMML fields are x1..x6, fed by position
    model = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(A, y)
    sqlite_registry.log_model(model, "rf", input_example=A[:100])
    result = convert(sqlite_registry, "rf/1", to="pmml")
    assert result.passed and result.precision == "float"  # tree splits compare float32
    assert result.checks["input_example"].label_agreement == 1.0
    assert result.version is not None
    pmml = sqlite_registry.load_model(result.version.uri)
    np.testing.assert_array_equal(pmml.predict(A), model.predict(A))


def test_a_failed_check_registers_nothing_and_says_by_how_much(
        sqlite_registry: Registry) -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = make_regression(300, 5, noise=3, random_state=0)
    model = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X, y)
    sqlite_registry.log_model(model, "r", input_example=X[:100])
    with pytest.raises(GateFailedError, match="not equivalent") as err:
        convert(sqlite_registry, "r/1", to="pmml", tolerance=1e-15)
    assert err.value.exit_code == 10
    report = err.value.details["report"]
    assert report["passed"] is False and report["target"] == "pmml"
    assert report["checks"]["input_example"]["max_abs_diff"] > 1e-15
    assert [v.version for v in sqlite_registry.list("r")] == [1]


def test_unsupported_models_list_what_is_supported(sqlite_registry: Registry,
                                                   table: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.semi_supervised import LabelSpreading

    class Doubler(modelport.PythonModel):
        def predict(self, X: Any) -> Any:
            return np.asarray(X) * 2

    X, y = table
    sqlite_registry.log_model(Doubler(), "py", input_example=X[:3], trusted=True)
    with pytest.raises(UnsupportedModelError, match=r"supported: .*random forests"):
        convert(sqlite_registry, "py/1", to="pmml", trusted=True)
    sqlite_registry.log_model(LabelSpreading().fit(X[:100], y[:100]), "ls",
                              input_example=X[:5])
    with pytest.raises(UnsupportedModelError,
                       match=r"sklearn2pmml cannot convert LabelSpreading: .*Supported: "):
        convert(sqlite_registry, "ls/1", to="pmml")
    sqlite_registry.log_model(LogisticRegression().fit(X, y), "lr", input_example=X[:5])
    with pytest.raises(InvalidInputError, match="--quantize applies to --to onnx only"):
        convert(sqlite_registry, "lr/1", to="pmml", quantized=True)
    for name in ("py", "ls", "lr"):
        assert [v.version for v in sqlite_registry.list(name)] == [1]
