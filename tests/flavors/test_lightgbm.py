"""LightGBM in native text format: round trips, labels, file detection, refusals."""

from __future__ import annotations

import io
import pickle
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from modelport.artifacts import Bundle
from modelport.errors import UnsupportedModelError
from modelport.flavors import SavedModel, TrustPolicy, flavor_for_model, get_flavor
from modelport.flavors.lightgbm import LightGBMFlavor
from tests.flavors import bundles

lgb = pytest.importorskip("lightgbm")

FLAVOR = LightGBMFlavor()
# One thread: tiny models only pay for thread start-up and contention on a busy machine.
SMALL = {"n_estimators": 5, "num_leaves": 4, "min_child_samples": 5, "verbose": -1, "n_jobs": 1}


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(200, 4))


def bundle_of(saved: SavedModel, libraries: dict[str, str] | None = None) -> Bundle:
    return bundles.bundle_of(FLAVOR, saved, libraries)


def round_trip(model):
    return bundles.round_trip(FLAVOR, model)


@pytest.mark.parametrize("labels", [
    lambda X: (X[:, 0] > 0).astype(int),
    lambda X: np.where(X[:, 0] > 0, 1, -1),
    lambda X: np.where(X[:, 0] > 0, "yes", "no"),
    lambda X: X[:, 0] > 0,
    lambda X: np.digitize(X[:, 0], [-0.5, 0.5]),
    lambda X: np.array(["low", "mid", "high"])[np.digitize(X[:, 0], [-0.5, 0.5])],
    lambda X: np.array([1.0, 2.0, 7.0])[np.digitize(X[:, 0], [-0.5, 0.5])],
    lambda X: pd.Series(np.where(X[:, 0] > 0, "a", "b"), dtype=object),
], ids=["binary", "binary-signs", "binary-str", "bool", "multi", "multi-str", "multi-float",
        "object"])
def test_classifier_returns_the_original_labels(X, labels) -> None:
    y = labels(X)
    model = lgb.LGBMClassifier(**SMALL).fit(X, y)
    saved = FLAVOR.save(model)
    assert saved.meta["wrapper"] == "LGBMClassifier"
    predictor = FLAVOR.load(bundle_of(saved), TrustPolicy())
    got, want = predictor.predict(X), model.predict(X)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype
    assert isinstance(predictor.model, lgb.Booster)


def test_binary_threshold_matches_at_the_boundary(X) -> None:
    # Rows whose probability is near 0.5 are where a hand-written threshold would differ.
    model = lgb.LGBMClassifier(n_estimators=1, num_leaves=2, learning_rate=1e-9, verbose=-1,
                               n_jobs=1)
    model.fit(X, (X[:, 0] > 0).astype(int))
    np.testing.assert_array_equal(round_trip(model).predict(X), model.predict(X))


def test_regressor_and_dataframe_with_categories() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    df["d"] = pd.Categorical(rng.choice(list("wxyz"), 200))
    y = df["a"] * 2 + (df["d"] == "x") * 3
    model = lgb.LGBMRegressor(**SMALL).fit(df, y)
    np.testing.assert_allclose(round_trip(model).predict(df), model.predict(df), rtol=1e-6)


def test_linear_trees_and_ranker(X) -> None:
    model = lgb.LGBMRegressor(**SMALL, linear_tree=True).fit(X, X[:, 0] * 3)
    np.testing.assert_allclose(round_trip(model).predict(X), model.predict(X), rtol=1e-6)
    ranker = lgb.LGBMRanker(**SMALL).fit(X, (X[:, 0] > 0).astype(int), group=[10] * 20)
    np.testing.assert_allclose(round_trip(ranker).predict(X), ranker.predict(X), rtol=1e-6)


@pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")
def test_early_stopping_keeps_the_best_iteration(X) -> None:
    noise = np.random.default_rng(2).normal(size=50)
    model = lgb.LGBMRegressor(n_estimators=100, learning_rate=0.5, verbose=-1, n_jobs=1)
    model.fit(X[:150], X[:150, 0], eval_set=[(X[150:], noise)],
              callbacks=[lgb.early_stopping(2, verbose=False)])
    assert model.best_iteration_ < 100
    np.testing.assert_allclose(round_trip(model).predict(X), model.predict(X), rtol=1e-6)


def test_booster(X) -> None:
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1}
    labels = np.digitize(X[:, 0], [-0.5, 0.5])
    booster = lgb.train(params, lgb.Dataset(X, labels), num_boost_round=3)
    saved = FLAVOR.save(booster)
    assert saved.meta == {"wrapper": "Booster"}
    assert set(saved.files) == {"model.txt"}
    predictor = FLAVOR.load(bundle_of(saved), TrustPolicy())
    np.testing.assert_allclose(predictor.predict(X), booster.predict(X), rtol=1e-6)


def test_registry_and_model_detection(X) -> None:
    assert isinstance(get_flavor("lightgbm"), LightGBMFlavor)
    for model in (lgb.LGBMClassifier(**SMALL).fit(X, X[:, 0] > 0),
                  lgb.LGBMRegressor(**SMALL).fit(X, X[:, 0]),
                  lgb.train({"verbose": -1, "num_threads": 1}, lgb.Dataset(X, X[:, 0]),
                            num_boost_round=2)):
        assert flavor_for_model(model).name == "lightgbm"
    assert FLAVOR.handles(object()) is False
    with pytest.raises(UnsupportedModelError, match="unfitted LGBMRegressor"):
        FLAVOR.save(lgb.LGBMRegressor())


def test_bad_metadata_is_refused(X) -> None:
    saved = FLAVOR.save(lgb.LGBMClassifier(**SMALL).fit(X, np.digitize(X[:, 0], [0.0, 0.5])))
    for meta in ({**saved.meta, "wrapper": "builtins.eval"},
                 {**saved.meta, "classes": [0, 1]},
                 {**saved.meta, "classes_dtype": "not a dtype"},
                 {**saved.meta, "classes_dtype": "<M8[ns]"}):
        with pytest.raises(UnsupportedModelError):
            FLAVOR.load(bundle_of(SavedModel(saved.files, meta)), TrustPolicy())


# --- files made elsewhere ------------------------------------------------------------


@pytest.fixture(scope="module")
def text(X) -> bytes:
    model = lgb.LGBMClassifier(**SMALL).fit(X, np.digitize(X[:, 0], [-0.5, 0.5]))
    return model.booster_.model_to_string().encode()


def test_model_file_registers_as_is(X, text) -> None:
    assert FLAVOR.sniff(text) is True
    saved = FLAVOR.from_file(text, ".txt")
    assert saved.files == {"model.txt": text}
    assert saved.meta == {"wrapper": "Booster"}
    got = FLAVOR.load(bundle_of(saved), TrustPolicy()).predict(X)
    np.testing.assert_allclose(got, lgb.Booster(model_str=text.decode()).predict(X), rtol=1e-6)


def test_other_formats_are_not_lightgbm(X) -> None:
    xgb = pytest.importorskip("xgboost")
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(X, label=X[:, 0]), num_boost_round=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", "{}")
    others = {
        "xgboost-json": bytes(booster.save_raw("json")),
        "xgboost-ubj": bytes(booster.save_raw("ubj")),
        "onnx": b"\x08\x08\x12\x07skl2onnx:\x02\n\x00",
        "zip": buf.getvalue(),
        "pickle": pickle.dumps("tree\nversion=v4"),
        "random": np.random.default_rng(3).bytes(500),
        "empty": b"",
        "plain text": b"tree house\n",
    }
    for label, data in others.items():
        assert FLAVOR.sniff(data) is False, label
        with pytest.raises(UnsupportedModelError):
            FLAVOR.from_file(data, ".txt")


def _sub(pattern: str, replacement: str):
    return lambda text: re.sub(pattern.encode(), replacement.encode(), text, count=1)


# Each of these aborts or crashes the whole process inside LightGBM if it gets that far.
@pytest.mark.parametrize("corrupt", [
    lambda t: t[: len(t) // 2],
    lambda t: t[: t.index(b"end of parameters") - 40],
    lambda t: t.replace(b"[is_unbalance: 0]", b"[is_unbal\nance: 0]"),
    _sub(r"num_leaves=4", "num_leaves=40"),
    _sub(r"left_child=\S+", "left_child=55"),
    _sub(r"split_feature=\S+", "split_feature=9"),
    _sub(r"threshold=", "thresh0ld="),
    _sub(r"tree_sizes=\d+", "tree_sizes=7"),
    _sub(r"leaf_value=\S+", "leaf_value=1_0"),
    _sub(r"num_tree_per_iteration=3", "num_tree_per_iteration=0"),
], ids=["half", "params-cut", "params-split", "leaves", "child", "feature", "key", "sizes",
        "number", "per-iteration"])
def test_damaged_files_are_refused_before_lightgbm_sees_them(text, corrupt) -> None:
    damaged = corrupt(text)
    assert damaged != text
    with pytest.raises(UnsupportedModelError):
        FLAVOR.from_file(damaged, ".txt")
