"""The lean scikit-learn predicts answer exactly what the estimators' own predict does."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

from modelport.flavors.sklearn_lean import lean_predict

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
X_BIN, Y_BIN = make_classification(500, 8, random_state=0)


@pytest.mark.parametrize(
    ("model", "x", "y"),
    [
        (LogisticRegression(max_iter=1000), X_IRIS, Y_IRIS),
        (LogisticRegression(), X_BIN, Y_BIN),  # binary: one decision column
        (SGDClassifier(random_state=0), X_IRIS, np.array(["a", "b", "c"])[Y_IRIS]),
        (RandomForestClassifier(20, max_depth=6, random_state=0), X_BIN, Y_BIN),
        (ExtraTreesClassifier(10, random_state=0), X_IRIS, np.array(["a", "b", "c"])[Y_IRIS]),
    ],
)
def test_lean_predict_is_bit_identical(model, x, y) -> None:
    model.fit(x, y)
    lean = lean_predict(model, model.predict)
    assert lean is not None
    rng = np.random.default_rng(0)
    for n in (1, 3, 64, 257):
        rows = x[rng.integers(0, len(x), n)] + rng.normal(0, 0.5, (n, x.shape[1]))
        want, got = model.predict(rows), lean(rows)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_inputs_it_does_not_cover_go_to_the_fallback() -> None:
    model = LogisticRegression(max_iter=1000).fit(X_IRIS, Y_IRIS)
    calls = []
    lean = lean_predict(model, lambda x: calls.append(x) or "fallback")
    assert lean is not None
    for x in (X_IRIS[:2].astype(np.float32), X_IRIS[:2, :3], np.array([[np.nan, 1, 2, 3.0]])):
        assert lean(x) == "fallback"
    assert len(calls) == 3


def test_other_estimators_and_parallel_forests_get_none() -> None:
    assert lean_predict(DecisionTreeClassifier().fit(X_IRIS, Y_IRIS), print) is None
    forest = RandomForestClassifier(5, n_jobs=2, random_state=0).fit(X_IRIS, Y_IRIS)
    assert lean_predict(forest, print) is None
