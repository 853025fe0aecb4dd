"""ONNX through onnxruntime: round trips of skl2onnx conversions, file detection, refusals."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelport.artifacts import Bundle
from modelport.errors import SignatureError, UnsupportedModelError
from modelport.flavors import SavedModel, TrustPolicy, flavor_for_model, get_flavor
from modelport.flavors.onnx import ONNXFlavor
from tests.flavors import bundles

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

FLAVOR = ONNXFlavor()


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(200, 4))


def bundle_of(saved: SavedModel, libraries: dict[str, str] | None = None) -> Bundle:
    return bundles.bundle_of(FLAVOR, saved, libraries)


def round_trip(model):
    return bundles.round_trip(FLAVOR, model)


def convert(model, example):
    return skl2onnx.to_onnx(model, example)


@pytest.mark.parametrize("labels", [
    lambda X: (X[:, 0] + X[:, 1] > 0).astype(int),
    lambda X: np.digitize(X[:, 0], [-0.5, 0.5]),
], ids=["binary", "multiclass"])
def test_classifier_labels_match_sklearn(X, labels) -> None:
    model = LogisticRegression().fit(X, labels(X))
    predictor = round_trip(convert(model, X[:1].astype(np.float32)))
    assert isinstance(predictor.model, ort.InferenceSession)
    # float64 input is cast to the graph's float32.
    np.testing.assert_array_equal(predictor.predict(X), model.predict(X))
    np.testing.assert_array_equal(predictor.predict(pd.DataFrame(X)), model.predict(X))


def test_regressor(X) -> None:
    model = LinearRegression().fit(X, X[:, 0] * 2 + 1)
    got = round_trip(convert(model, X[:1].astype(np.float32))).predict(X)
    assert got.shape == (len(X), 1)  # the graph's first output, as it is
    np.testing.assert_allclose(got.ravel(), model.predict(X), rtol=1e-5, atol=1e-5)


def test_one_input_per_column(X) -> None:
    df = pd.DataFrame(X, columns=list("abcd"))
    scale = ColumnTransformer([("s", StandardScaler(), list("abcd"))])
    model = make_pipeline(scale, LogisticRegression()).fit(df, (X[:, 0] > 0).astype(int))
    proto = convert(model, df[:1].astype(np.float32))
    assert len(proto.graph.input) == 4
    predictor = round_trip(proto)
    shuffled = df[["d", "c", "b", "a"]]  # matched by name, not position
    np.testing.assert_array_equal(predictor.predict(shuffled), model.predict(df))


def test_input_that_cannot_be_fed_is_a_signature_error(X) -> None:
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    predictor = round_trip(convert(model, X[:1].astype(np.float32)))
    with pytest.raises(SignatureError):
        predictor.predict(np.array([["a", "b", "c", "d"]]))
    with pytest.raises(SignatureError):
        predictor.predict(X[:, :3])


def test_registry_and_model_detection(X) -> None:
    proto = convert(LogisticRegression().fit(X, X[:, 0] > 0), X[:1].astype(np.float32))
    assert isinstance(get_flavor("onnx"), ONNXFlavor)
    assert flavor_for_model(proto).name == "onnx"
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert FLAVOR.handles(session) is False
    assert FLAVOR.handles(LogisticRegression()) is False


# --- files made elsewhere ------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(X):
    return LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))


def test_model_file_registers_as_is(X, fitted) -> None:
    data = convert(fitted, X[:1].astype(np.float32)).SerializeToString()
    assert FLAVOR.sniff(data) is True
    saved = FLAVOR.from_file(data, ".onnx")
    assert saved.files == {"model.onnx": data}
    got = FLAVOR.load(bundle_of(saved), TrustPolicy()).predict(X)
    np.testing.assert_array_equal(got, fitted.predict(X))


def test_other_formats_are_not_onnx(X) -> None:
    others = {
        "pickle": pickle.dumps(LogisticRegression()),
        "random": np.random.default_rng(3).bytes(500),
        "empty": b"",
        "text": b"hello world\n",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", "{}")
    others["zip"] = buf.getvalue()
    xgb = pytest.importorskip("xgboost")
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(X, label=X[:, 0]), num_boost_round=2)
    others["xgboost-json"] = bytes(booster.save_raw("json"))
    others["xgboost-ubj"] = bytes(booster.save_raw("ubj"))
    lgb = pytest.importorskip("lightgbm")
    others["lightgbm"] = lgb.train(
        {"verbose": -1, "num_threads": 1}, lgb.Dataset(X, X[:, 0]), num_boost_round=2
    ).model_to_string().encode()
    for label, data in others.items():
        assert FLAVOR.sniff(data) is False, label
        with pytest.raises(UnsupportedModelError):
            FLAVOR.from_file(data, ".onnx")


def test_invalid_graph_is_refused() -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    node = helper.make_node("NoSuchOperator", ["x"], ["y"])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]))
    data = model.SerializeToString()
    assert FLAVOR.sniff(data) is True  # it is ONNX, just not a valid model
    with pytest.raises(UnsupportedModelError, match="invalid ONNX model"):
        FLAVOR.from_file(data, ".onnx")


def _external_data_model(tensor_in_node: bool = False):
    from onnx import TensorProto, helper

    weight = TensorProto(name="w", data_type=TensorProto.UINT8, dims=[4])
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="secrets.bin")
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [4])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, [4])
    if tensor_in_node:  # hidden in a Constant node inside an If branch
        const = helper.make_node("Constant", [], ["w"], value=weight)
        branch = helper.make_graph([const], "b", [], [y])
        cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
        node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
        graph = helper.make_graph([node], "g", [cond], [y])
    else:
        graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y],
                                  initializer=[weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("nested", [False, True])
def test_external_data_is_refused(tmp_path, monkeypatch, nested) -> None:
    # onnxruntime would read secrets.bin from the working directory.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets.bin").write_bytes(b"abcd")
    model = _external_data_model(nested)
    with pytest.raises(UnsupportedModelError, match="outside the model file"):
        FLAVOR.save(model)
    with pytest.raises(UnsupportedModelError):
        FLAVOR.from_file(model.SerializeToString(), ".onnx")
    bundle = bundle_of(SavedModel({"model.onnx": model.SerializeToString()}, {}))
    with pytest.raises(UnsupportedModelError, match="outside the model file"):
        FLAVOR.load(bundle, TrustPolicy())
