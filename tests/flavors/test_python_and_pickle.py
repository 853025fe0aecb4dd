"""Custom Python models and pickles: stored, and loaded only when trusted."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelport import ModelContext, PythonModel
from modelport.client import Registry
from modelport.errors import UnsupportedModelError, UntrustedModelError


class Scaler(PythonModel):
    """Multiplies by a factor read from an artifact file at load time."""

    def __init__(self, offset: float) -> None:
        self.offset = offset
        self.factor: float | None = None

    def load_context(self, context: ModelContext) -> None:
        self.factor = float(Path(context.artifacts["factor"]).read_text())

    def predict(self, X):
        return np.asarray(X, dtype=float).sum(axis=1) * self.factor + self.offset


class NotAModel:
    pass


def test_python_model_round_trip_with_artifacts(sqlite_registry: Registry, tmp_path: Path) -> None:
    factor = tmp_path / "factor.txt"
    factor.write_text("3")
    X = np.arange(12, dtype=float).reshape(4, 3)
    v = sqlite_registry.log_model(Scaler(0.5), "custom", artifacts={"factor": str(factor)},
                                  input_example=X[:2])
    assert v.flavor == "python"
    with pytest.raises(UntrustedModelError, match="runs its code"):
        sqlite_registry.load_model("custom/1")
    m = sqlite_registry.load_model("custom/1", trusted=True)
    np.testing.assert_allclose(m.predict(X), X.sum(axis=1) * 3 + 0.5)
    assert m.signature["inputs"]["shape"] == [-1, 3]


def test_python_model_without_artifacts(sqlite_registry: Registry) -> None:
    class Constant(PythonModel):
        def predict(self, X):
            return np.full(len(X), 7)

    sqlite_registry.log_model(Constant(), "const")
    out = sqlite_registry.load_model("const/1", trusted=True).predict(np.zeros((3, 2)))
    np.testing.assert_array_equal(out, [7, 7, 7])


def test_artifacts_must_be_files(sqlite_registry: Registry, tmp_path: Path) -> None:
    from modelport.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="is not a file"):
        sqlite_registry.log_model(Scaler(0), "c", artifacts={"factor": str(tmp_path)})
    assert sqlite_registry.list() == []


class PredictsZero:
    def predict(self, X):
        return np.zeros(len(X))


def test_pickle_needs_trust_to_register_and_to_load(sqlite_registry: Registry) -> None:
    with pytest.raises(UnsupportedModelError):
        sqlite_registry.log_model(PredictsZero(), "z")
    v = sqlite_registry.log_model(PredictsZero(), "z", trusted=True)
    assert v.flavor == "pickle"
    with pytest.raises(UntrustedModelError, match="arbitrary code"):
        sqlite_registry.load_model("z/1")
    assert sqlite_registry.load_model("z/1", trusted=True).predict(np.ones((2, 2))).tolist() == [
        0, 0]


def test_pickle_and_joblib_files(sqlite_registry: Registry, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.random((50, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int))
    pkl, jbl, jbz = tmp_path / "m.pkl", tmp_path / "m.joblib", tmp_path / "mz.joblib"
    pkl.write_bytes(pickle.dumps(model))
    joblib.dump(model, jbl)
    joblib.dump(model, jbz, compress=3)
    for path in (pkl, jbl, jbz):
        with pytest.raises(UntrustedModelError, match="--trusted"):
            sqlite_registry.register_file("legacy", path)
    assert sqlite_registry.list() == []
    for path in (pkl, jbl, jbz):
        v = sqlite_registry.register_file("legacy", path, trusted=True)
        got = sqlite_registry.load_model(v.uri, trusted=True).predict(X)
        np.testing.assert_array_equal(got, model.predict(X))


def test_pickle_of_something_that_cannot_predict(sqlite_registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(NotAModel()))
    with pytest.raises(UnsupportedModelError, match="no predict method"):
        sqlite_registry.register_file("x", path, trusted=True)
    assert sqlite_registry.list() == []


def test_untrusted_pickle_never_runs(sqlite_registry: Registry, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UntrustedModelError):
        sqlite_registry.register_file("evil", path)
    assert not marker.exists()
