"""Registry (the public facade): log, load, verify, and no half-written state on failure."""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import modelport
from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import (
    ArtifactIntegrityError,
    InvalidInputError,
    InvalidNameError,
    SignatureError,
    UnsupportedModelError,
    UntrustedModelError,
)
from modelport.flavors.base import LibraryVersionWarning


def _shift(x):
    return x + 1


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((120, 4)), columns=["a", "b", "c", "d"])
    return X, (X["a"] + X["b"] > 1).astype(int).to_numpy()


def _blob_files(reg: Registry) -> list[Path]:
    root = Path(reg.artifacts.describe()) / "sha256"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_log_and_load_round_trip(registry: Registry, data) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    v = registry.log_model(model, "iris", input_example=X.head(3), metrics={"acc": 0.91},
                           params={"C": 1.0}, tags={"team": "a"}, training_data=X)
    assert v.flavor == "sklearn"
    assert v.signature["inputs"]["type"] == "dataframe"
    assert [c["name"] for c in v.signature["inputs"]["columns"]] == ["a", "b", "c", "d"]
    assert v.signature["outputs"]["dtype"] == "int64"
    assert v.training_data["rows"] == 120
    assert v.environment["libraries"]["scikit-learn"]
    assert v.created_by == "tester"
    registry.set_alias("iris", "champion", v.version)
    for uri in ["models:/iris/1", "models:/iris@champion", "iris/1", "iris@champion", "iris"]:
        loaded = registry.load_model(uri)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert list(loaded.input_example.columns) == ["a", "b", "c", "d"]
    assert isinstance(loaded.native, LogisticRegression)


def test_identical_files_share_one_artifact(registry: Registry, data, tmp_path: Path) -> None:
    import skops.io as sio

    X, y = data
    path = tmp_path / "m.skops"
    sio.dump(LogisticRegression().fit(X, y), path)
    v1 = registry.register_file("m", path)
    n = len(_blob_files(registry))
    v2 = registry.register_file("m", path)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.artifact_digest == v2.artifact_digest
    assert len(_blob_files(registry)) == n


def test_a_registered_file_links_and_profiles_its_training_data(
        registry: Registry, data, tmp_path: Path) -> None:
    import skops.io as sio

    X, y = data
    model = LogisticRegression().fit(X, y)
    path = tmp_path / "m.skops"
    sio.dump(model, path)
    v = registry.register_file("m", path, input_example=X.head(3), training_data=X,
                               eval_data=X.head(20))
    assert v.training_data["rows"] == len(X)
    profile = registry.reference_profile(v.uri)  # what drift compares live traffic with
    assert profile is not None and profile.rows == len(X)
    linked = {d.role: d for d in registry.datasets.of_model(v.uri)}
    assert (linked["training"].dataset, linked["eval"].dataset) == ("m-training", "m-eval")
    assert registry.datasets.get(f"datasets:/m-eval/{linked['eval'].dataset_version}"
                                 ).rows == 20
    # Data the model cannot predict on keeps its feature profile, as with log_model.
    with pytest.warns(UserWarning, match="no prediction profile"):
        registry.register_file("m", path, training_data=X[["a", "b"]])


def test_module_level_api_uses_modelport_home(home: Path, data) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    v = modelport.log_model(model, "iris", input_example=X.head(2))
    m = modelport.load_model(f"models:/iris/{v.version}")
    np.testing.assert_array_equal(m.predict(X), model.predict(X))
    assert (home / "registry.db").is_file()


def test_signature_is_enforced_with_precise_errors(sqlite_registry: Registry, data) -> None:
    X, y = data
    sqlite_registry.log_model(LogisticRegression().fit(X, y), "m", input_example=X.head(2))
    m = sqlite_registry.load_model("m/1")
    with pytest.raises(SignatureError, match="missing column 'd'"):
        m.predict(X[["a", "b", "c"]])
    with pytest.raises(SignatureError, match="column 'b': expected float64, got object"):
        m.predict(X.assign(b="x"))
    # reordered columns and int columns are fine
    np.testing.assert_array_equal(m.predict(X[["d", "c", "b", "a"]]), m.predict(X))
    # a plain array of the right width takes the signature's column names
    np.testing.assert_array_equal(m.predict(X.to_numpy()), m.predict(X))
    with pytest.raises(SignatureError, match="expected 4 columns"):
        m.predict(X.to_numpy()[:, :3])


def test_failed_registration_leaves_no_row_and_no_blob(tmp_path: Path, home: Path, data) -> None:
    X, y = data
    reg = Registry(settings=Settings.load(home))
    reg.list()  # creates the database
    con = sqlite3.connect(home / "registry.db")
    con.execute("CREATE TRIGGER fail BEFORE INSERT ON model_versions "
                "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    con.commit()
    with pytest.raises(Exception, match="disk on fire"):
        reg.log_model(LogisticRegression().fit(X, y), "m", input_example=X.head(2))
    assert _blob_files(reg) == []
    con.execute("DROP TRIGGER fail")
    con.commit()
    assert reg.log_model(LogisticRegression().fit(X, y), "m").version == 1
    reg.close()


def test_tampered_artifact_is_never_loaded(sqlite_registry: Registry, data) -> None:
    X, y = data
    v = sqlite_registry.log_model(LogisticRegression().fit(X, y), "m")
    assert sqlite_registry.verify("m/1").files >= 1
    target = max(_blob_files(sqlite_registry), key=lambda p: p.stat().st_size)
    os.chmod(target, 0o644)
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        sqlite_registry.load_model("m/1")
    with pytest.raises(ArtifactIntegrityError):
        sqlite_registry.verify(v.uri)


def test_untrusted_skops_types_are_refused_unless_the_operator_trusts_them(
    home: Path, data
) -> None:
    X, y = data
    custom = make_pipeline(FunctionTransformer(_shift), LogisticRegression()).fit(X, y)
    reg = Registry(settings=Settings.load(home))
    reg.log_model(custom, "p")
    with pytest.raises(UntrustedModelError, match=r"_shift\b") as err:
        reg.load_model("p/1")
    assert "trusted_types" in str(err.value)
    # trusting at load time via trusted=True does NOT widen skops' list: only config does
    with pytest.raises(UntrustedModelError):
        reg.load_model("p/1", trusted=True)
    reg.close()
    name = err.value.details["untrusted"][0]
    (home / "config.toml").write_text(f'trusted_types = ["{name}"]\n')
    reg = Registry(settings=Settings.load(home))
    np.testing.assert_array_equal(reg.load_model("p/1").predict(X), custom.predict(X))
    reg.close()


def test_tree_models_load_without_configuration(sqlite_registry: Registry, data) -> None:
    X, y = data
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    sqlite_registry.log_model(forest, "f")
    np.testing.assert_array_equal(sqlite_registry.load_model("f/1").predict(X), forest.predict(X))


def test_objects_without_a_safe_format_need_trust(sqlite_registry: Registry) -> None:
    class Weird:
        def predict(self, X):
            return np.zeros(len(X))

    with pytest.raises(UnsupportedModelError, match="trusted=True"):
        sqlite_registry.log_model(Weird(), "w")
    with pytest.raises(UnsupportedModelError, match="no safe format"):
        sqlite_registry.log_model(object(), "w")
    assert sqlite_registry.list() == []


def test_library_major_version_mismatch_warns(sqlite_registry: Registry, data, monkeypatch) -> None:
    X, y = data
    sqlite_registry.log_model(LinearRegression().fit(X, y), "lr")
    from modelport.flavors.sklearn import SklearnFlavor

    monkeypatch.setattr(SklearnFlavor, "library_versions",
                        lambda self: {"scikit-learn": "99.0.0", "skops": "0.16.0"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sqlite_registry.load_model("lr/1")
    assert any(issubclass(w.category, LibraryVersionWarning) and "99.0.0" in str(w.message)
               for w in caught)


def test_bad_arguments(sqlite_registry: Registry, data) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(InvalidNameError):
        sqlite_registry.log_model(model, "../evil")
    with pytest.raises(InvalidInputError, match="metric 'acc' is not a number"):
        sqlite_registry.log_model(model, "m", metrics={"acc": "high"})
    with pytest.raises(InvalidInputError, match="not finite"):
        sqlite_registry.log_model(model, "m", metrics={"acc": float("nan")})
    with pytest.raises(InvalidInputError, match="cannot predict on input_example"):
        sqlite_registry.log_model(model, "m", input_example=np.zeros((2, 7)))
    with pytest.raises(InvalidInputError, match="params must be JSON"):
        sqlite_registry.log_model(model, "m", params={"f": object()})
    assert sqlite_registry.list() == []
    with pytest.raises(InvalidInputError, match="not an alias"):
        sqlite_registry.delete("m@champion")
