"""The reference profile through the registry: log_model -> load_model -> reference_profile."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from modelport.client import PROFILE_FILE, Registry
from modelport.config import Settings
from modelport.errors import InvalidInputError
from modelport.monitoring.drift import compare


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.random(3000),
                      "kind": rng.choice(["s", "m", "l"], size=3000)})
    return X, (X["a"] > 0).astype(int).to_numpy()


def _blobs(reg: Registry) -> list[Path]:
    root = Path(reg.artifacts.describe()) / "sha256"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_round_trip(registry: Registry, data) -> None:
    X, y = data
    model = LogisticRegression().fit(X[["a", "b"]], y)
    v = registry.log_model(model, "risk", training_data=X[["a", "b"]],
                           input_example=X[["a", "b"]].head(3))
    loaded = registry.load_model(f"risk/{v.version}")
    profile = loaded.reference_profile
    assert profile is not None and profile.names == ["a", "b"] and profile.rows == 3000
    assert profile.predictions is not None and profile.predictions[0].name == "prediction"
    assert set(profile.predictions[0].categories) == {0, 1}
    assert registry.reference_profile("risk/1") == profile
    registry.set_alias("risk", "champion", 1)
    assert registry.reference_profile("risk@champion") == profile
    # The file is in the version's immutable bundle, next to the model.
    assert PROFILE_FILE in loaded._bundle.names()
    assert v.training_data is not None and v.training_data["rows"] == 3000
    # ... and is what a drift report needs.
    window = X[["a", "b"]].sample(500, random_state=1).assign(a=lambda f: f["a"] + 2)
    report = compare(profile, window, predictions=model.predict(window))
    assert report.feature("a").drifted is True and report.feature("b").drifted is False
    assert report.prediction_drift is True


def test_numpy_training_data_and_regression_outputs(registry: Registry, data) -> None:
    X, _ = data
    arr = X[["a", "b"]].to_numpy()
    model = LinearRegression().fit(arr, arr[:, 0] * 3)
    registry.log_model(model, "reg", training_data=arr)
    profile = registry.load_model("reg/1").reference_profile
    assert profile is not None and profile.names == ["f0", "f1"]
    assert profile.predictions is not None and profile.predictions[0].kind == "numeric"


def test_categorical_training_columns_are_profiled_even_if_the_model_fails(
        registry: Registry, data) -> None:
    X, y = data
    model = LogisticRegression().fit(X[["a", "b"]], y)
    with pytest.warns(UserWarning, match="no prediction profile"):
        registry.log_model(model, "m", training_data=X)  # "kind" is not a model input
    profile = registry.reference_profile("m/1")
    assert profile is not None and profile.predictions is None
    kind = profile.feature("kind")
    assert kind is not None and kind.kind == "categorical"


def test_no_training_data_no_profile(registry: Registry, data) -> None:
    X, y = data
    registry.log_model(LogisticRegression().fit(X[["a", "b"]], y), "m")
    assert registry.load_model("m/1").reference_profile is None
    assert registry.reference_profile("m/1") is None


def test_bad_training_data_leaves_nothing(sqlite_registry: Registry, data) -> None:
    X, y = data
    model = LogisticRegression().fit(X[["a", "b"]], y)
    bad = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=10)})
    with pytest.raises(InvalidInputError, match="cannot be profiled"):
        sqlite_registry.log_model(model, "m", training_data=bad)
    assert _blobs(sqlite_registry) == [] and sqlite_registry.list() == []


def test_failed_registration_removes_the_profile_blob_too(home: Path, data) -> None:
    X, y = data
    reg = Registry(settings=Settings.load(home))
    reg.list()  # creates the database
    con = sqlite3.connect(home / "registry.db")
    con.execute("CREATE TRIGGER fail BEFORE INSERT ON model_versions "
                "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    con.commit()
    model = LogisticRegression().fit(X[["a", "b"]], y)
    with pytest.raises(Exception, match="disk on fire"):
        reg.log_model(model, "m", training_data=X[["a", "b"]])
    assert _blobs(reg) == []
    reg.close()
