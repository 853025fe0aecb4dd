"""``modelport build edge``: ONNX as stored or converted (and checked), and a runner that
needs nothing of modelport, run in a venv holding only its requirements."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnxruntime
import pytest

from modelport.artifacts.bundle import Bundle
from modelport.errors import InvalidInputError, UnsupportedModelError
from modelport.export.edge import build_edge
from tests.e2e.conftest import Cli
from tests.export.conftest import COLUMNS, Venvs, clean_env


def _onnx_labels(path: Path, X: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    node = session.get_inputs()[0]
    dtype = np.float64 if node.type == "tensor(double)" else np.float32
    return np.asarray(session.run(None, {node.name: X.astype(dtype)})[0])


@pytest.fixture(scope="module")
def iris_bundle(source: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edge")
    source.X.assign(species=0).to_csv(root / "check.csv", index=False)  # an extra column
    build_edge(source.registry, "iris@champion", root / "iris", check_data=root / "check.csv")
    return root / "iris"


def test_sklearn_classifier_converted_and_checked(iris_bundle: Path,
                                                  source: SimpleNamespace) -> None:
    files = {p.name for p in iris_bundle.iterdir()}
    assert files == {"model.onnx", "model.json", "predict.py", "requirements.txt",
                     "example.json", "README.md", "build.json"}
    meta = json.loads((iris_bundle / "model.json").read_text())
    assert [c["name"] for c in meta["inputs"]] == COLUMNS
    assert meta["check"]["how"] == "converted (double)"
    assert meta["check"]["rows"] == 5 + 150  # the stored example + --check-data
    assert meta["check"]["label_agreement"] == 1.0 and meta["check"]["passed"] is True
    assert meta["source"]["uri"] == "models:/iris/3"
    X = source.X.to_numpy()
    np.testing.assert_array_equal(_onnx_labels(iris_bundle / "model.onnx", X),
                                  source.models[2].predict(source.X))
    reqs = (iris_bundle / "requirements.txt").read_text().split()
    assert [r.split("==")[0] for r in reqs] == ["onnxruntime", "numpy"]
    tree = ast.parse((iris_bundle / "predict.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"numpy", "onnxruntime"}


def test_regression_reports_max_abs_diff(source: SimpleNamespace, tmp_path: Path) -> None:
    built = build_edge(source.registry, "reg/1", tmp_path / "reg")
    check = built.converted.check
    assert check is not None and check.label_agreement is None
    assert check.max_abs_diff is not None and check.max_abs_diff <= 1e-9
    got = _onnx_labels(tmp_path / "reg" / "model.onnx", source.A).reshape(-1)
    np.testing.assert_allclose(got, source.lin.predict(source.A), rtol=1e-6)
    meta = json.loads((tmp_path / "reg" / "model.json").read_text())
    assert [c["name"] for c in meta["inputs"]] == ["x0", "x1", "x2"]


def test_onnx_version_is_used_as_stored(source: SimpleNamespace, tmp_path: Path) -> None:
    built = build_edge(source.registry, "graph/1", tmp_path / "g")
    version = source.registry.get("graph/1")
    stored = Bundle(source.registry.artifacts, version.artifact_digest).read("model.onnx")
    assert (tmp_path / "g" / "model.onnx").read_bytes() == stored
    assert built.converted.how == "as stored"
    assert built.converted.check is not None and built.converted.check.rows == 5
    assert built.converted.check.label_agreement == 1.0


@pytest.mark.parametrize(("uri", "needle"), [
    ("centroid/1", "NearestCentroid"),
    ("pickled/1", "is a pickle model"),
])
def test_unsupported_models_are_refused_with_the_list(source: SimpleNamespace,
                                                      tmp_path: Path, uri: str,
                                                      needle: str) -> None:
    with pytest.raises(UnsupportedModelError) as info:
        build_edge(source.registry, uri, tmp_path / "out")
    message = str(info.value)
    assert needle in message
    assert "onnx versions as stored" in message and "LogisticRegression" in message
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []


def test_lightgbm_converted_as_float_and_checked(source: SimpleNamespace,
                                                 tmp_path: Path) -> None:
    built = build_edge(source.registry, "boost/1", tmp_path / "b")
    assert built.converted.how == "converted (float)"  # onnxmltools makes float graphs
    got = _onnx_labels(tmp_path / "b" / "model.onnx", source.X.to_numpy())
    agree = float(np.mean(got == source.boost.predict(source.X)))
    assert agree >= 0.99, agree  # float32 inputs may flip a row on a split threshold
    assert built.converted.check is not None and built.converted.check.label_agreement == 1.0


def test_a_graph_that_disagrees_is_refused(source: SimpleNamespace, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport.convert import onnx as convert_onnx
    from modelport.errors import GateFailedError

    real = convert_onnx.to_onnx
    other = source.models[0]  # another iris classifier: a converted graph, wrong answers

    def wrong(model: Any, flavor: str, n: int, precisions: Any) -> Any:
        return real(other, flavor, n, precisions)

    monkeypatch.setattr(convert_onnx, "to_onnx", wrong)
    with pytest.raises(GateFailedError, match=r"no ONNX graph of models:/iris/3 agrees"):
        build_edge(source.registry, "iris/3", tmp_path / "out", check_data=None)
    assert not (tmp_path / "out").exists()


def test_check_data_must_have_the_columns(source: SimpleNamespace, tmp_path: Path) -> None:
    source.X.drop(columns=["petal_width"]).to_csv(tmp_path / "few.csv", index=False)
    with pytest.raises(InvalidInputError, match=r"lacks column.*petal_width"):
        build_edge(source.registry, "iris/3", tmp_path / "out", check_data=tmp_path / "few.csv")
    with pytest.raises(InvalidInputError, match="not found"):
        build_edge(source.registry, "iris/3", tmp_path / "out", check_data=tmp_path / "no.csv")
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e
def test_cli_edge_exit_codes(source: SimpleNamespace, tmp_path: Path) -> None:
    runs = Cli().many(source.home, [
        ["build", "edge", "centroid/1", "--out", tmp_path / "a"],
        ["build", "edge", "nosuch/1", "--out", tmp_path / "b"],
        ["build", "edge", "reg/1", "--out", tmp_path / "c", "--json"],
    ])
    assert [r.returncode for r in runs] == [2, 3, 0], runs
    assert json.loads(runs[2].stdout)["check"]["max_abs_diff"] <= 1e-9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


@pytest.fixture(scope="module")
def edge_python(iris_bundle: Path, venvs: Venvs) -> Path:
    """A venv with the bundle's requirements only (onnxruntime, numpy)."""
    return venvs.create("edge", ["--requirement", str(iris_bundle / "requirements.txt")])


def _run(python: Path, *args: Any, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *map(str, args)], input=stdin, env=clean_env(),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_runner_in_a_venv_without_modelport(edge_python: Path, iris_bundle: Path,
                                            source: SimpleNamespace, tmp_path: Path) -> None:
    assert _run(edge_python, "-c", "import modelport").returncode != 0
    expected = source.models[2].predict(source.X).tolist()
    runner = iris_bundle / "predict.py"
    # CSV with the columns in another order: matched by name.
    shuffled = source.X[COLUMNS[::-1]]
    shuffled.to_csv(tmp_path / "rows.csv", index=False)
    csv_run = _run(edge_python, runner, tmp_path / "rows.csv")
    assert csv_run.returncode == 0, csv_run.stderr
    assert json.loads(csv_run.stdout)["predictions"] == expected
    lines = _run(edge_python, runner, tmp_path / "rows.csv", "--format", "csv")
    assert [int(v) for v in lines.stdout.split()] == expected
    records = json.dumps(source.X.to_dict("records"))
    stdin_run = _run(edge_python, runner, "-", "--all-outputs", stdin=records)
    assert stdin_run.returncode == 0, stdin_run.stderr
    out = json.loads(stdin_run.stdout)
    assert out["predictions"] == expected
    np.testing.assert_allclose(out["outputs"]["probabilities"],
                               source.models[2].predict_proba(source.X), rtol=1e-6, atol=1e-9)
    example = _run(edge_python, runner, iris_bundle / "example.json")
    stored_rows = source.example.head(5)  # a version keeps five rows of its example
    assert json.loads(example.stdout)["predictions"] == source.models[2].predict(
        stored_rows).tolist()
    assert len(set(json.loads(example.stdout)["predictions"])) == 3
    (tmp_path / "bad.csv").write_text("sepal_length,sepal_width\n1,2\n")
    bad = _run(edge_python, runner, tmp_path / "bad.csv")
    assert bad.returncode == 2 and bad.stderr.startswith("error: missing column(s)")
    assert "Traceback" not in bad.stderr
    (tmp_path / "text.json").write_text('[[1, 2, "x", 4]]')
    text = _run(edge_python, runner, tmp_path / "text.json")
    assert text.returncode == 2 and "error:" in text.stderr and "Traceback" not in text.stderr
