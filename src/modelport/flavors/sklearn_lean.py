"""Lean predict for the scikit-learn estimators whose predict is a few array operations.

For a one-row batch, scikit-learn's own ``predict`` spends ~100 µs validating its input
(dtype, finiteness, feature names, array namespaces) around a few µs of arithmetic. The
server has already checked the batch against the signature, so for the estimators here
the arithmetic is run directly: the same numpy calls in the same order as
scikit-learn's own code, so the answers are bit for bit the same. Anything outside
what that covers (another dtype or shape, NaN or infinity, sparse coefficients, a
parallel forest) goes to the estimator's own ``predict``. The server still compares
the result with the table path on the signature's example before using it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Predict = Callable[[Any], Any]


def lean_predict(model: Any, fallback: Predict) -> Predict | None:
    """A predict for bare 2-D float64 arrays equivalent to ``model.predict``, or None."""
    return _linear(model, fallback) or _forest(model, fallback)


def _plain_rows(x: Any, n_features: int) -> bool:
    """True for the arrays the lean paths cover: 2-D, float64, the right width, finite."""
    return (type(x) is np.ndarray and x.dtype == np.float64 and x.ndim == 2
            and x.shape[1] == n_features and bool(np.isfinite(x).all()))


def _linear(model: Any, fallback: Predict) -> Predict | None:
    """``LinearClassifierMixin.predict`` (LogisticRegression, SGDClassifier, ...)."""
    from sklearn.linear_model._base import LinearClassifierMixin

    cls = type(model)
    if not (getattr(cls, "predict", None) is LinearClassifierMixin.predict
            and getattr(cls, "decision_function", None)
            is LinearClassifierMixin.decision_function):
        return None
    coef, intercept = getattr(model, "coef_", None), getattr(model, "intercept_", None)
    classes = getattr(model, "classes_", None)
    if not (type(coef) is np.ndarray and isinstance(intercept, np.ndarray | float)
            and type(classes) is np.ndarray and coef.ndim == 2):
        return None
    coef_t = coef.T
    n_features = coef.shape[1]

    def predict(x: Any) -> Any:
        if not _plain_rows(x, n_features):
            return fallback(x)
        # decision_function: safe_sparse_dot(X, coef_.T) + intercept_ is X @ coef_.T for
        # dense arrays; a single column is flattened; predict then thresholds or argmaxes.
        scores = x @ coef_t + intercept
        if scores.ndim > 1 and scores.shape[1] == 1:
            scores = scores.reshape(-1)
        indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return classes.take(indices, axis=0)

    return predict


def _forest(model: Any, fallback: Predict) -> Predict | None:
    """``RandomForestClassifier`` / ``ExtraTreesClassifier`` with one output, run serially."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    if type(model) not in (RandomForestClassifier, ExtraTreesClassifier):
        return None
    trees = list(getattr(model, "estimators_", []))
    n_classes = getattr(model, "n_classes_", None)
    # n_jobs other than 1 sums the trees in whatever order threads finish: not
    # reproducible bit for bit, so not imitated.
    if (getattr(model, "n_outputs_", None) != 1 or model.n_jobs not in (None, 1) or not trees
            or not isinstance(n_classes, int | np.integer)
            or any(type(t) not in (DecisionTreeClassifier, ExtraTreeClassifier)
                   for t in trees)):
        return None
    classes = model.classes_
    n_features = int(model.n_features_in_)
    forest = [(t.tree_, int(t.n_classes_)) for t in trees]

    def predict(x: Any) -> Any:
        if not _plain_rows(x, n_features):
            return fallback(x)
        # predict_proba: X as float32, each tree's proba (value[:, :n_classes]) summed in
        # estimator order into float64, divided by the tree count; predict takes argmax.
        x32 = x.astype(np.float32)
        proba = np.zeros((x.shape[0], n_classes), dtype=np.float64)
        for tree, width in forest:
            proba += tree.predict(x32)[:, :width]
        proba /= len(forest)
        return classes.take(np.argmax(proba, axis=1), axis=0)

    return predict
