"""A Deployment: signature check, batching, the array fast path and its equivalence check."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelport.client import Registry
from modelport.errors import SignatureError
from modelport.serving.deployment import BatchingConfig, Deployment
from modelport.serving.types import InferenceRequest, Tensor


@pytest.fixture
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((100, 3)), columns=["a", "b", "c"])
    return X, (X["a"] > X["b"]).astype(int).to_numpy()


def _deploy(reg: Registry, model, X: pd.DataFrame) -> Deployment:
    v = reg.log_model(model, "m", input_example=X.head(5))
    dep = Deployment("m", reg.load_model(v.uri), BatchingConfig(max_latency_ms=1))
    dep.warm()
    return dep


async def _infer(dep: Deployment, X: pd.DataFrame) -> np.ndarray:
    req = InferenceRequest("m", [Tensor(c, X[c].to_numpy()) for c in X.columns])
    resp = await dep.infer(req)
    await dep.close()
    return resp.outputs[0].data


def test_float_table_model_uses_the_array_path(sqlite_registry: Registry, frame) -> None:
    X, y = frame
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    dep = _deploy(sqlite_registry, model, X)
    assert dep.array_predict is not None
    np.testing.assert_array_equal(asyncio.run(_infer(dep, X)), model.predict(X))


def test_name_based_column_selection_keeps_the_table_path(sqlite_registry: Registry,
                                                          frame) -> None:
    X, y = frame
    pre = ColumnTransformer([("keep", "passthrough", ["c", "a"])])
    model = make_pipeline(pre, LogisticRegression()).fit(X, y)
    dep = _deploy(sqlite_registry, model, X)
    assert dep.array_predict is None  # a bare array cannot be selected by column name
    np.testing.assert_array_equal(asyncio.run(_infer(dep, X)), model.predict(X))


def test_bad_requests_fail_before_the_model(sqlite_registry: Registry, frame) -> None:
    X, y = frame
    dep = _deploy(sqlite_registry, LogisticRegression().fit(X, y), X)

    async def run() -> None:
        with pytest.raises(SignatureError, match="missing input 'c'"):
            await dep.infer(InferenceRequest("m", [Tensor("a", np.zeros(2)),
                                                   Tensor("b", np.zeros(2))]))
        with pytest.raises(SignatureError, match="NaN"):
            await dep.infer(InferenceRequest("m", [Tensor("input-0", np.full((1, 3), np.nan))]))
        await dep.close()

    asyncio.run(run())


def test_float_tensor_forest_uses_the_lean_predict(sqlite_registry: Registry, frame) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = frame
    x = X.to_numpy()
    model = RandomForestClassifier(10, random_state=0).fit(x, y)
    v = sqlite_registry.log_model(model, "m", input_example=x[:5])
    dep = Deployment("m", sqlite_registry.load_model(v.uri), BatchingConfig(max_latency_ms=1))
    dep.warm()
    assert dep.array_predict is not None

    async def go() -> np.ndarray:
        resp = await dep.infer(InferenceRequest("m", [Tensor("input-0", x)]))
        await dep.close()
        return resp.outputs[0].data

    np.testing.assert_array_equal(asyncio.run(go()), model.predict(x))
