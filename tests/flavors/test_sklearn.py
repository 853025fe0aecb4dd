"""scikit-learn via skops: round trips of common estimators, file detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelport.client import Registry
from modelport.errors import UnsupportedModelError
from modelport.flavors import flavor_for_file, flavor_for_model, get_flavor


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    X = rng.random((150, 4))
    return X, (X[:, 0] + X[:, 1] > 1).astype(int)


@pytest.mark.parametrize("make", [
    lambda: LogisticRegression(),
    lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    lambda: HistGradientBoostingClassifier(max_iter=5),
    lambda: KNeighborsClassifier(3),
    lambda: GradientBoostingRegressor(n_estimators=5),
])
def test_round_trip(sqlite_registry: Registry, xy, make) -> None:
    X, y = xy
    model = make().fit(X, y)
    assert flavor_for_model(model).name == "sklearn"
    v = sqlite_registry.log_model(model, "m", input_example=X[:3])
    got = sqlite_registry.load_model(v.uri).predict(X)
    np.testing.assert_allclose(got, model.predict(X))


def test_dataframe_with_strings(sqlite_registry: Registry) -> None:
    import pandas as pd

    X = pd.DataFrame({"city": ["a", "b", "c", "a"] * 10, "x": np.arange(40.0)})
    y = (X["x"] > 20).astype(int)
    pre = ColumnTransformer([("oh", OneHotEncoder(), ["city"])], remainder="passthrough")
    model = make_pipeline(pre, LogisticRegression()).fit(X, y)
    v = sqlite_registry.log_model(model, "cities", input_example=X.head(3))
    cols = {c["name"]: c["dtype"] for c in v.signature["inputs"]["columns"]}
    assert cols["x"] == "float64"
    assert cols["city"] in ("object", "string")
    got = sqlite_registry.load_model("cities/1").predict(X)
    np.testing.assert_array_equal(got, model.predict(X))


def test_file_detection(tmp_path: Path, xy) -> None:
    X, y = xy
    path = tmp_path / "m.skops"
    sio.dump(LogisticRegression().fit(X, y), path)
    data = path.read_bytes()
    assert flavor_for_file(data, ".skops").name == "sklearn"
    assert get_flavor("sklearn").sniff(b"PK\x03\x04garbage") is False
    with pytest.raises(UnsupportedModelError, match=r"does not match its extension \.skops"):
        flavor_for_file(b"\x00\x01 not a zip", ".skops")
    with pytest.raises(UnsupportedModelError, match=r"cannot register a \.exe file"):
        flavor_for_file(data, ".exe")
