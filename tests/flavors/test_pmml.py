"""PMML through JPMML-Evaluator on a real JVM: documents made by sklearn2pmml, loaded back.

The JVM starts once per test process (it cannot be restarted); each module converts its
models once (every sklearn2pmml conversion runs a ``java`` process).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from modelport.client import Registry
from modelport.errors import (
    ArtifactIntegrityError,
    ConfigurationError,
    SignatureError,
    UnsupportedModelError,
)
from modelport.flavors import flavor_for_file, flavor_for_model
from modelport.flavors.pmml import PMMLDocument, PMMLFlavor, read_layout
from modelport.gates.scoring import native_probabilities
from tests.flavors import bundles

pytest.importorskip("jpmml_evaluator")
pytest.importorskip("sklearn2pmml")

FLAVOR = PMMLFlavor()
COLUMNS = ["a", "b", "c", "d"]


def require_java() -> None:
    """Skip without Java, except under CI, where a missing runtime is a failure."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI") == "true":
            pytest.fail("java is missing on CI: `make test` installs it "
                        "(scripts/ensure-system-deps.sh)")
        pytest.skip("no Java runtime")


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=COLUMNS)
    y = np.digitize(X["a"] + 0.5 * X["b"] - X["c"], [-0.7, 0.7])  # three classes
    return X, y


def positional(X: pd.DataFrame) -> np.ndarray:
    """X as a bare array whose second column is constant: no tree splits on it."""
    A = X.to_numpy().copy()
    A[:, 1] = 1.0
    return A


@pytest.fixture(scope="module")
def documents(data: Any) -> dict[str, tuple[Any, PMMLDocument]]:
    """A logistic regression (fitted on a table) and a random forest (on an array),
    fitted and converted once."""
    from modelport.convert.pmml import to_pmml

    require_java()
    X, y = data
    lr = LogisticRegression(max_iter=1000).fit(X, y)
    rf = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    rf.fit(positional(X), y)
    out = {}
    for name, model in (("lr", lr), ("rf", rf)):
        converted = to_pmml(model, "sklearn", 4)
        out[name] = (model, PMMLDocument(converted.xml, converted.columns))
    return out


def round_trip(document: PMMLDocument) -> Any:
    return bundles.round_trip(FLAVOR, document)


def test_logistic_regression_labels_and_probabilities(documents: Any, data: Any) -> None:
    X, _ = data
    model, doc = documents["lr"]
    predictor = round_trip(doc)
    np.testing.assert_array_equal(predictor.predict(X), model.predict(X))
    np.testing.assert_array_equal(predictor.classes_, model.classes_)
    np.testing.assert_allclose(predictor.predict_proba(X), model.predict_proba(X), atol=1e-9)
    assert FLAVOR.native(predictor) is predictor  # gates find predict_proba/classes_ on it
    layout = read_layout(doc.xml)
    assert layout.inputs == tuple(COLUMNS) and layout.target == "y"


def test_forest_by_name_by_position_and_refusals(documents: Any, data: Any) -> None:
    A = positional(data[0])
    model, doc = documents["rf"]
    # sklearn2pmml drops the field no tree uses; positions still follow the 4 columns.
    assert read_layout(doc.xml).inputs == ("x1", "x3", "x4") and doc.columns == (
        "x1", "x2", "x3", "x4")
    predictor = round_trip(doc)
    expected = model.predict(A)
    np.testing.assert_array_equal(predictor.predict(A), expected)  # by position
    named = pd.DataFrame(A, columns=["x1", "x2", "x3", "x4"])[["x4", "x3", "x2", "x1"]]
    np.testing.assert_array_equal(predictor.predict(named), expected)  # by name
    with pytest.raises(SignatureError, match="expects 4 columns"):
        predictor.predict(np.zeros((2, 3)))
    with pytest.raises(UnsupportedModelError, match="not among its input columns"):
        FLAVOR.save(PMMLDocument(doc.xml, ("x1", "x2")))


def test_file_detection_and_registration(documents: Any, data: Any, tmp_path: Path,
                                         sqlite_registry: Registry) -> None:
    X, _ = data
    model, doc = documents["lr"]
    xml = doc.xml
    assert flavor_for_file(xml, ".pmml").name == "pmml"
    assert flavor_for_model(PMMLDocument(xml)).name == "pmml"
    path = tmp_path / "model.pmml"
    path.write_bytes(xml)
    v = sqlite_registry.register_file("lr", path, input_example=X[:5])
    assert v.flavor == "pmml"
    loaded = sqlite_registry.load_model("lr/1")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    found = native_probabilities(loaded, loaded.validate(X), len(X))  # what gates use
    assert found is not None
    np.testing.assert_allclose(found[0], model.predict_proba(X), atol=1e-9)
    np.testing.assert_array_equal(found[1], model.classes_)
    with pytest.raises(UnsupportedModelError, match="does not match"):
        flavor_for_file(b"<?xml version='1.0'?><html/>", ".pmml")
    from modelport.errors import InvalidInputError
    from modelport.export.docker import build_docker

    # An image without Java would fail its first load: refused before anything is written.
    with pytest.raises(InvalidInputError, match="needs a Java runtime"):
        build_docker(sqlite_registry, "lr/1", tmp_path / "ctx")
    assert not (tmp_path / "ctx").exists()


def test_a_tampered_artifact_is_never_loaded(documents: Any, sqlite_registry: Registry,
                                             home: Path) -> None:
    xml = documents["lr"][1].xml
    sqlite_registry.log_model(PMMLDocument(xml), "t")
    blobs = [p for p in (home / "artifacts").rglob("*") if p.is_file()
             and p.read_bytes() == xml]
    assert len(blobs) == 1
    blobs[0].chmod(0o644)
    blobs[0].write_bytes(xml.replace(b"<PMML", b"<PMML ", 1))
    with pytest.raises(ArtifactIntegrityError):
        sqlite_registry.load_model("t/1")


def test_documents_with_a_doctype_or_no_model_are_refused() -> None:
    lol = (b'<?xml version="1.0"?><!DOCTYPE PMML [<!ENTITY a "aaaaaaaaaa">'
           b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><PMML>&b;</PMML>')
    with pytest.raises(UnsupportedModelError, match="DOCTYPE"):
        FLAVOR.save(PMMLDocument(lol))
    utf16 = '<!DOCTYPE PMML [<!ENTITY a "a">]><PMML>&a;</PMML>'.encode("utf-16")
    with pytest.raises(UnsupportedModelError, match="DOCTYPE"):
        read_layout(utf16)
    with pytest.raises(UnsupportedModelError, match="holds no model"):
        read_layout(b'<PMML xmlns="http://www.dmg.org/PMML-4_4"><Header/></PMML>')
    with pytest.raises(UnsupportedModelError, match="not a PMML document"):
        read_layout(b"<PMML><unclosed></PMML>")


def test_missing_java_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport.convert.pmml import to_pmml
    from modelport.flavors.pmml_jvm import require_java as find_java

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigurationError, match="PMML needs a Java runtime"):
        find_java()
    with pytest.raises(ConfigurationError, match="java on PATH"):
        to_pmml(LogisticRegression(), "sklearn", 4)
