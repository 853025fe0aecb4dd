"""XGBoost in native UBJSON: round trips of boosters and wrappers, file detection, refusals."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from modelport.artifacts import Bundle
from modelport.errors import UnsupportedModelError
from modelport.flavors import (
    LibraryVersionWarning,
    SavedModel,
    TrustPolicy,
    flavor_for_model,
    get_flavor,
)
from modelport.flavors.xgboost import XGBoostFlavor
from tests.flavors import bundles

xgb = pytest.importorskip("xgboost")

FLAVOR = XGBoostFlavor()


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models: threads only add start-up and contention on a busy machine.
    with xgb.config_context(nthread=1):
        yield


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(200, 4))


def bundle_of(saved: SavedModel, libraries: dict[str, str] | None = None) -> Bundle:
    return bundles.bundle_of(FLAVOR, saved, libraries)


def round_trip(model):
    return bundles.round_trip(FLAVOR, model)


def binary(X):
    return (X[:, 0] + X[:, 1] > 0).astype(int)


def multiclass(X):
    return np.digitize(X[:, 0], [-0.5, 0.5])


@pytest.mark.parametrize("make, target", [
    (lambda: xgb.XGBClassifier(n_estimators=5, max_depth=3), binary),
    (lambda: xgb.XGBClassifier(n_estimators=5, max_depth=3), multiclass),
    (lambda: xgb.XGBClassifier(n_estimators=5, objective="multi:softmax"), multiclass),
    (lambda: xgb.XGBRFClassifier(n_estimators=5, max_depth=3), binary),
])
def test_classifiers_return_the_same_labels(X, make, target) -> None:
    model = make().fit(X, target(X))
    predictor = round_trip(model)
    assert type(predictor.model) is type(model)
    np.testing.assert_array_equal(predictor.predict(X), model.predict(X))
    np.testing.assert_allclose(predictor.model.predict_proba(X), model.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: xgb.XGBRegressor(n_estimators=5, max_depth=3),
    lambda: xgb.XGBRegressor(n_estimators=5, booster="dart"),
    lambda: xgb.XGBRegressor(n_estimators=5, booster="gblinear"),
    lambda: xgb.XGBRFRegressor(n_estimators=5),
])
def test_regressors(X, make) -> None:
    model = make().fit(X, X[:, 0] * 2 + X[:, 1])
    predictor = round_trip(model)
    assert type(predictor.model) is type(model)
    np.testing.assert_allclose(predictor.predict(X), model.predict(X), rtol=1e-6)


def test_ranker(X) -> None:
    qid = np.repeat(np.arange(20), 10)
    model = xgb.XGBRanker(n_estimators=5).fit(X, np.digitize(X[:, 0], [0.0]), qid=qid)
    np.testing.assert_allclose(round_trip(model).predict(X), model.predict(X), rtol=1e-6)


def test_missing_value_marker_is_kept(X) -> None:
    data = X.copy()
    data[::7, 0] = -999.0
    model = xgb.XGBRegressor(n_estimators=5, missing=-999.0).fit(data, X[:, 1])
    predictor = round_trip(model)
    assert predictor.model.missing == -999.0
    np.testing.assert_allclose(predictor.predict(data), model.predict(data), rtol=1e-6)


def test_early_stopping_predicts_with_the_best_iteration(X) -> None:
    rng = np.random.default_rng(1)
    model = xgb.XGBRegressor(n_estimators=100, early_stopping_rounds=2, learning_rate=0.5)
    model.fit(X[:150], X[:150, 0], eval_set=[(X[150:], rng.normal(size=50))], verbose=False)
    assert model.best_iteration < 99
    np.testing.assert_allclose(round_trip(model).predict(X), model.predict(X), rtol=1e-6)


def test_dataframe_with_categories() -> None:
    rng = np.random.default_rng(2)
    cats = pd.Categorical(rng.choice(list("xyz"), 200))
    df = pd.DataFrame({"a": rng.normal(size=200), "c": cats})
    y = (df["c"] == "x").astype(int)
    model = xgb.XGBClassifier(n_estimators=5, enable_categorical=True, tree_method="hist")
    model.fit(df, y)
    np.testing.assert_array_equal(round_trip(model).predict(df), model.predict(df))


def test_booster_accepts_numpy_and_pandas(X) -> None:
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3},
                        xgb.DMatrix(X, label=multiclass(X)), num_boost_round=5)
    saved = FLAVOR.save(booster)
    assert saved.meta == {"wrapper": "Booster"}
    assert set(saved.files) == {"model.ubj"}
    predictor = FLAVOR.load(bundle_of(saved), TrustPolicy())
    assert isinstance(predictor.model, xgb.Booster)
    expected = booster.predict(xgb.DMatrix(X))
    np.testing.assert_allclose(predictor.predict(X), expected, rtol=1e-6)
    np.testing.assert_allclose(predictor.predict(pd.DataFrame(X)), expected, rtol=1e-6)
    np.testing.assert_allclose(predictor.predict(xgb.DMatrix(X)), expected, rtol=1e-6)
    assert FLAVOR.native(predictor) is predictor.model


def test_registry_and_model_detection(X) -> None:
    assert isinstance(get_flavor("xgboost"), XGBoostFlavor)
    for model in (xgb.XGBClassifier(n_estimators=2).fit(X, binary(X)),
                  xgb.XGBRegressor(n_estimators=2).fit(X, X[:, 0]),
                  xgb.train({}, xgb.DMatrix(X, label=X[:, 0]), num_boost_round=2)):
        assert flavor_for_model(model).name == "xgboost"
    assert FLAVOR.handles(object()) is False
    assert FLAVOR.handles(np.zeros(3)) is False
    assert set(FLAVOR.library_versions()) & {"xgboost", "xgboost-cpu"}


def test_unfitted_model_is_refused() -> None:
    with pytest.raises(UnsupportedModelError, match="unfitted XGBClassifier"):
        FLAVOR.save(xgb.XGBClassifier())


def test_wrapper_outside_the_whitelist_is_refused(X) -> None:
    saved = FLAVOR.save(xgb.XGBRegressor(n_estimators=2).fit(X, X[:, 0]))
    saved.meta["wrapper"] = "os.system"
    with pytest.raises(UnsupportedModelError, match="unknown XGBoost model class"):
        FLAVOR.load(bundle_of(saved), TrustPolicy())


def test_major_version_mismatch_warns_across_distribution_names(X) -> None:
    saved = FLAVOR.save(xgb.XGBRegressor(n_estimators=2).fit(X, X[:, 0]))
    with pytest.warns(LibraryVersionWarning, match="xgboost 1.0.0"):
        FLAVOR.load(bundle_of(saved, {"xgboost": "1.0.0"}), TrustPolicy())


# --- files made elsewhere ------------------------------------------------------------


@pytest.fixture(scope="module")
def booster(X):
    return xgb.train({"max_depth": 3}, xgb.DMatrix(X, label=X[:, 0]), num_boost_round=4)


@pytest.mark.parametrize("fmt, name", [("ubj", "model.ubj"), ("json", "model.json")])
def test_model_file_registers_as_is(X, booster, fmt, name) -> None:
    data = bytes(booster.save_raw(fmt))
    assert FLAVOR.sniff(data) is True
    saved = FLAVOR.from_file(data, f".{fmt}")
    assert saved.files == {name: data}
    assert saved.meta == {"wrapper": "Booster"}
    predictor = FLAVOR.load(bundle_of(saved), TrustPolicy())
    np.testing.assert_allclose(predictor.predict(X), booster.predict(xgb.DMatrix(X)), rtol=1e-6)


def other_formats(X) -> dict[str, bytes]:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])])
    lgb = pytest.importorskip("lightgbm")
    text = lgb.train({"verbose": -1, "num_threads": 1}, lgb.Dataset(X, X[:, 0]), 2)
    text = text.model_to_string().encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", "{}")
    return {
        "onnx": helper.make_model(graph).SerializeToString(),
        "lightgbm": text,
        "zip": buf.getvalue(),
        "pickle": pickle.dumps({"learner": 1, "version": 2}),
        "random": np.random.default_rng(3).bytes(500),
        "empty": b"",
        "brace": b"{",
        "json without learner": b'{"version": [3, 0, 0]}',
        "json learner not object": b'{"learner": 1, "version": [3, 0, 0]}',
    }


def test_other_formats_are_not_xgboost(X) -> None:
    for label, data in other_formats(X).items():
        assert FLAVOR.sniff(data) is False, label
        with pytest.raises(UnsupportedModelError):
            FLAVOR.from_file(data, ".json")


def _edit_json(booster, edit) -> bytes:
    doc = json.loads(bytes(booster.save_raw("json")))
    edit(doc["learner"]["gradient_booster"]["model"]["trees"][0])
    return json.dumps(doc).encode()


def _set(key: str, index: int, value: int):
    def edit(tree: dict) -> None:
        tree[key][index] = value
    return edit


@pytest.mark.parametrize("corrupt", [
    lambda b: bytes(b.save_raw("ubj"))[:-1],
    lambda b: bytes(b.save_raw("ubj"))[: len(b.save_raw("ubj")) // 2],
    lambda b: bytes(b.save_raw("json"))[:-1],
    lambda b: bytes(b.save_raw("ubj")) + b"\x00",
    # These load "fine" in XGBoost and then crash the process at predict time.
    lambda b: _edit_json(b, _set("left_children", 0, 10**6)),
    lambda b: _edit_json(b, _set("left_children", 0, 0)),
    lambda b: _edit_json(b, _set("split_indices", 0, 10**6)),
    lambda b: _edit_json(b, _set("parents", 1, 5)),
], ids=["ubj-1", "ubj-half", "json-1", "ubj+1", "child", "cycle", "feature", "parent"])
def test_damaged_files_are_refused_before_xgboost_sees_them(booster, corrupt) -> None:
    with pytest.raises(UnsupportedModelError):
        FLAVOR.from_file(corrupt(booster), ".ubj")


def test_damaged_bundle_is_refused_at_load(booster) -> None:
    saved = SavedModel({"model.ubj": bytes(booster.save_raw("ubj"))[:-3]}, {"wrapper": "Booster"})
    with pytest.raises(UnsupportedModelError):
        FLAVOR.load(bundle_of(saved), TrustPolicy())


def test_log_model_infers_the_signature_of_a_raw_booster(sqlite_registry) -> None:
    import pandas as pd
    import xgboost as xgb

    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.random((60, 3)), columns=["a", "b", "c"])
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(X, label=X["a"] > 0.5), num_boost_round=3)
    v = sqlite_registry.log_model(booster, "raw", input_example=X.head(4))
    assert v.flavor == "xgboost"
    assert v.signature["outputs"]["dtype"] == "float32"
    got = sqlite_registry.load_model(v.uri).predict(X)
    np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(X)), rtol=1e-6)
