"""run_gate end to end on a real registry (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier

import modelport
from modelport import PythonModel
from modelport.client import Registry
from modelport.errors import (
    InvalidInputError,
    ModelNotFoundError,
    SignatureError,
    VersionNotFoundError,
)
from modelport.gates import run_gate


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X.assign(species=y)


@pytest.fixture
def models(registry: Registry, iris: pd.DataFrame) -> Registry:
    """iris/1 champion (good), iris/2 a stump (bad), iris/3 good."""
    X, y = iris.drop(columns="species"), iris["species"]
    registry.log_model(LogisticRegression(max_iter=500).fit(X, y), "iris", input_example=X[:5])
    registry.set_alias("iris", "champion", 1)
    registry.log_model(DecisionTreeClassifier(max_depth=1).fit(X, y), "iris",
                       input_example=X[:5])
    registry.log_model(LogisticRegression(max_iter=500, C=2.0).fit(X, y), "iris",
                       input_example=X[:5])
    return registry


def test_good_candidate_passes_and_the_verdict_is_stored(models: Registry,
                                                         iris: pd.DataFrame) -> None:
    report = run_gate(models, "iris/3", iris, "species",
                      rules=["accuracy >= 0.9", "f1 >= champion - 0.01"])
    assert report.passed and report.champion == "models:/iris/1"
    assert [c.name for c in report.checks] == ["predict", "accuracy >= 0.9",
                                               "f1 >= champion - 0.01", "signature"]
    assert report.metrics["champion"]["accuracy"] == pytest.approx(0.9733, abs=1e-3)
    assert report.averaging == "macro over 3 classes"
    stored = models.records.latest_gate("iris", 3)
    assert stored is not None and stored.id == report.gate_id
    assert stored.passed and stored.against == 1 and stored.created_by == "tester"
    assert stored.report["checks"][1]["name"] == "accuracy >= 0.9"


def test_worse_candidate_fails_the_default_rule(models: Registry, iris: pd.DataFrame) -> None:
    report = run_gate(models, "iris/2", iris, "species")
    assert not report.passed
    assert [c.name for c in report.failures] == ["accuracy >= champion"]
    assert any("no rules given" in n for n in report.notes)
    assert "1 of 3 checks failed (accuracy >= champion)" in report.summary()
    stored = models.records.latest_gate("iris", 2)
    assert stored is not None and not stored.passed


def test_without_champion_relative_rules_are_skipped(registry: Registry,
                                                     iris: pd.DataFrame) -> None:
    X, y = iris.drop(columns="species"), iris["species"]
    registry.log_model(LogisticRegression(max_iter=500).fit(X, y), "first", input_example=X[:5])
    report = run_gate(registry, "first/1", iris, "species",
                      rules=["accuracy >= 0.9", "f1 >= champion"])
    assert report.passed and report.champion is None and "champion" not in report.metrics
    skipped = [c for c in report.checks if c.skipped]
    assert [c.name for c in skipped] == ["f1 >= champion"]
    assert any("no alias 'champion' yet" in n for n in report.notes)
    assert registry.records.latest_gate("first", 1).against is None  # type: ignore[union-attr]


def test_against_a_version_or_uri(models: Registry, iris: pd.DataFrame) -> None:
    assert run_gate(models, "iris/3", iris, "species", against=2).champion == "models:/iris/2"
    assert run_gate(models, "iris/3", iris, "species",
                    against="models:/iris/2").champion == "models:/iris/2"
    assert run_gate(models, "iris/3", iris, "species", against=None).champion is None


def test_bad_references_are_errors_and_store_nothing(models: Registry,
                                                     iris: pd.DataFrame) -> None:
    with pytest.raises(VersionNotFoundError):
        run_gate(models, "iris/3", iris, "species", against=9)
    with pytest.raises(InvalidInputError, match="must be a version of 'iris'"):
        run_gate(models, "iris/3", iris, "species", against="other/1")
    with pytest.raises(ModelNotFoundError):
        run_gate(models, "nope/1", iris, "species")
    with pytest.raises(VersionNotFoundError):
        run_gate(models, "iris/7", iris, "species")
    with pytest.raises(InvalidInputError, match="rmse is not a classification metric"):
        run_gate(models, "iris/3", iris, "species", rules=["rmse <= 1"])
    with pytest.raises(InvalidInputError, match="positive number of milliseconds"):
        run_gate(models, "iris/3", iris, "species", max_latency_ms=-1)
    with pytest.raises(SignatureError, match=r"does not fit the candidate.*petal width"):
        run_gate(models, "iris/3", iris.drop(columns="petal width (cm)"), "species")
    assert models.records.gate_results("iris") == []


class Crashes(PythonModel):
    def predict(self, X):  # type: ignore[no-untyped-def]
        if len(X) > 5:
            raise RuntimeError("out of memory")
        return np.zeros(len(X), dtype=int)


def test_a_crashing_candidate_fails_its_predict_check(models: Registry,
                                                      iris: pd.DataFrame) -> None:
    X = iris.drop(columns="species")
    models.log_model(Crashes(), "iris", input_example=X[:5], trusted=True)
    report = run_gate(models, "iris/4", iris, "species", rules=["accuracy >= 0.5"], trusted=True)
    predict, rule = report.checks[0], report.checks[1]
    assert not predict.passed and "RuntimeError: out of memory" in predict.message
    assert not rule.passed and "could not be computed" in rule.message
    assert models.records.latest_gate("iris", 4).passed is False  # type: ignore[union-attr]


def test_signature_incompatibility_fails(models: Registry, iris: pd.DataFrame) -> None:
    wider = iris.assign(extra=1.0)
    X = wider.drop(columns="species")
    models.log_model(LogisticRegression(max_iter=500).fit(X, wider["species"]), "iris",
                     input_example=X[:5])
    report = run_gate(models, "iris/4", wider, "species")
    sig = next(c for c in report.checks if c.name == "signature")
    assert not sig.passed and "requires column 'extra'" in sig.message
    assert "refuses the champion's input example" in sig.message


def test_regression_and_latency(registry: Registry) -> None:
    X, y = make_regression(n_samples=200, n_features=4, noise=5.0, random_state=0)
    features = pd.DataFrame(X, columns=list("abcd"))
    frame = features.assign(y=y)
    registry.log_model(LinearRegression().fit(features, y), "reg", input_example=features[:5])
    registry.set_alias("reg", "champion", 1)
    registry.log_model(Ridge(alpha=1.0).fit(features, y), "reg", input_example=features[:5])
    report = run_gate(registry, "reg/2", frame, "y", rules=["rmse <= champion * 1.05", "r2 > 0.9"],
                      max_latency_ms=10_000)
    assert report.task == "regression" and report.passed, report.to_dict()
    assert set(report.metrics["candidate"]) == {"rmse", "mae", "r2", "mape"}
    assert report.latency["calls"] >= 5 and report.latency["p99_ms"] > 0
    tight = run_gate(registry, "reg/2", frame, "y", rules=["r2 > 0.9"], max_latency_ms=1e-9,
                     record=False)
    assert [c.name for c in tight.failures] == ["latency"]


def test_public_api(registry: Registry, iris: pd.DataFrame) -> None:
    X, y = iris.drop(columns="species"), iris["species"]
    modelport.log_model(LogisticRegression(max_iter=500).fit(X, y), "api", input_example=X[:5],
                        registry=registry)
    report = modelport.gate("api/1", iris, "species", rules=["accuracy >= 0.9"],
                            registry=registry)
    assert report.passed and "gate" in modelport.__all__
