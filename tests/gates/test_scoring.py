"""Each flavor's classifier output turned into labels and probabilities the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelport import PythonModel
from modelport.client import Registry
from modelport.gates.evaldata import load_eval
from modelport.gates.scoring import score


@pytest.fixture(scope="module")
def binary() -> pd.DataFrame:
    X, y = make_classification(n_samples=300, n_features=5, random_state=0)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]).assign(y=y)


def _score(reg: Registry, uri: str, frame: pd.DataFrame, trusted: bool = False) -> dict:
    notes: list[str] = []
    return score(reg.load_model(uri, trusted=trusted), load_eval(frame, "y"), "m", notes)


def _expected_auc(frame: pd.DataFrame, proba: np.ndarray) -> float:
    return float(skm.roc_auc_score(frame["y"], proba))


def test_sklearn_probabilities_come_from_predict_proba(sqlite_registry: Registry,
                                                       binary: pd.DataFrame) -> None:
    X = binary.drop(columns="y")
    model = LogisticRegression().fit(X, binary["y"])
    sqlite_registry.log_model(model, "lr", input_example=X[:5])
    m = _score(sqlite_registry, "lr/1", binary)
    assert m["accuracy"] == pytest.approx(model.score(X, binary["y"]))
    assert m["roc_auc"] == pytest.approx(_expected_auc(binary, model.predict_proba(X)[:, 1]))
    assert m["log_loss"] == pytest.approx(skm.log_loss(binary["y"], model.predict_proba(X)))


def test_lightgbm_classifier_probabilities(sqlite_registry: Registry,
                                           binary: pd.DataFrame) -> None:
    lgb = pytest.importorskip("lightgbm")
    X = binary.drop(columns="y")
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, binary["y"])
    sqlite_registry.log_model(model, "lgb", input_example=X[:5])
    m = _score(sqlite_registry, "lgb/1", binary)
    assert m["accuracy"] == pytest.approx(float((model.predict(X) == binary["y"]).mean()))
    assert m["roc_auc"] == pytest.approx(_expected_auc(binary, model.predict_proba(X)[:, 1]))


def test_xgboost_booster_gives_probabilities_instead_of_labels(sqlite_registry: Registry,
                                                              binary: pd.DataFrame) -> None:
    xgb = pytest.importorskip("xgboost")
    X = binary.drop(columns="y")
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=binary["y"]),
                        num_boost_round=5)
    sqlite_registry.log_model(booster, "xgb", input_example=X[:5])
    p = booster.predict(xgb.DMatrix(X))
    m = _score(sqlite_registry, "xgb/1", binary)
    assert m["accuracy"] == pytest.approx(float(((p >= 0.5) == binary["y"]).mean()))
    assert m["roc_auc"] == pytest.approx(_expected_auc(binary, p))


def test_xgboost_multiclass_booster(sqlite_registry: Registry) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = make_classification(n_samples=200, n_features=6, n_informative=4, n_classes=3,
                               random_state=1)
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3},
                        xgb.DMatrix(X, label=y), num_boost_round=5)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]).assign(y=y)
    sqlite_registry.log_model(booster, "xgbm", input_example=X[:5])
    proba = booster.predict(xgb.DMatrix(X))
    m = _score(sqlite_registry, "xgbm/1", frame)
    assert m["accuracy"] == pytest.approx(float((proba.argmax(1) == y).mean()))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))


def test_onnx_zipmap_probabilities(sqlite_registry: Registry, binary: pd.DataFrame) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    X = binary.drop(columns="y").astype(np.float32)
    model = LogisticRegression().fit(X.to_numpy(), binary["y"])
    sqlite_registry.log_model(skl2onnx.to_onnx(model, X.to_numpy()[:1]), "onnx",
                              input_example=X.to_numpy()[:5])
    m = _score(sqlite_registry, "onnx/1", X.assign(y=binary["y"]))
    assert m["accuracy"] == pytest.approx(model.score(X.to_numpy(), binary["y"]), abs=0.01)
    assert m["roc_auc"] == pytest.approx(
        _expected_auc(binary, model.predict_proba(X.to_numpy())[:, 1]), abs=1e-3)


class Threshold(PythonModel):
    def predict(self, X):  # type: ignore[no-untyped-def]
        return (np.asarray(X)[:, 0] > 0).astype(int)


def test_a_python_model_with_labels_only_has_no_probability_metrics(
        sqlite_registry: Registry, binary: pd.DataFrame) -> None:
    X = binary.drop(columns="y")
    sqlite_registry.log_model(Threshold(), "py", input_example=X[:5], trusted=True)
    m = _score(sqlite_registry, "py/1", binary, trusted=True)
    assert m["accuracy"] == pytest.approx(float(((X["x0"] > 0) == binary["y"]).mean()))
    assert m["roc_auc"] is None and m["log_loss"] is None
