"""End to end: ``modelport gate`` as a subprocess, its exit codes, JSON and JUnit output."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import GateFailedError

pytestmark = pytest.mark.e2e


def expect(result: Any, code: int) -> Any:
    assert result.returncode == code, f"expected exit {code}\n{result}"
    return result


def error_line(result: Any) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, f"expected exactly one error line\n{result}"
    assert "Traceback" not in result.stderr, f"unexpected traceback\n{result}"
    return lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """iris/1 (champion), iris/2 (a stump), iris/3 (good); eval data as CSV and Parquet."""
    root = tmp_path_factory.mktemp("gate")
    home = root / "home"
    X, y = load_iris(return_X_y=True, as_frame=True)
    with Registry(settings=Settings.load(home)) as reg:
        reg.log_model(LogisticRegression(max_iter=500).fit(X, y), "iris", input_example=X[:5])
        reg.set_alias("iris", "champion", 1)
        reg.log_model(DecisionTreeClassifier(max_depth=1).fit(X, y), "iris",
                      input_example=X[:5])
        reg.log_model(LogisticRegression(max_iter=500, C=2.0).fit(X, y), "iris",
                      input_example=X[:5])
    frame = X.assign(species=y)
    csv, parquet = root / "eval.csv", root / "eval.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    nan = root / "nan.csv"
    frame.assign(species=frame["species"].where(frame.index % 10 != 3)).to_csv(nan, index=False)
    wrong = root / "wrong.csv"
    frame.drop(columns="sepal length (cm)").to_csv(wrong, index=False)
    empty = root / "empty.csv"
    frame.iloc[:0].to_csv(empty, index=False)
    return SimpleNamespace(root=root, home=home, csv=csv, parquet=parquet, nan=nan,
                           wrong=wrong, empty=empty)


def test_pass_prints_a_table_and_exits_0(cli: Any, world: SimpleNamespace) -> None:
    result = expect(cli.run(world.home, "gate", "iris/3", "--data", world.csv, "--target",
                            "species", "--rule", "accuracy >= 0.9", "--rule",
                            "f1 >= champion - 0.01", "--max-latency-ms", "10000"), 0)
    assert "accuracy >= 0.9" in result.stdout and "latency" in result.stdout
    assert "gate passed: models:/iris/3 (5 checks)" in result.stderr


def test_fail_exits_10_with_json_and_junit(cli: Any, world: SimpleNamespace) -> None:
    junit = world.root / "reports" / "gate.xml"
    junit.parent.mkdir()
    result = expect(cli.run(world.home, "gate", "models:/iris/2", "--data", world.parquet,
                            "--target", "species", "--json", "--junit", junit),
                    GateFailedError.exit_code)
    report = result.json()
    assert report["passed"] is False and report["champion"] == "models:/iris/1"
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["accuracy >= champion"]
    assert "gate failed: models:/iris/2: 1 of 3 checks failed" in error_line(result)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("3", "1")
    # The verdict is stored with the version.
    with Registry(settings=Settings.load(world.home)) as reg:
        stored = reg.records.latest_gate("iris", 2)
    assert stored is not None and not stored.passed and stored.id == report["gate_id"]


def test_without_the_alias_the_gate_runs_alone_and_says_so(cli: Any,
                                                           world: SimpleNamespace) -> None:
    result = expect(cli.run(world.home, "gate", "iris/2", "--data", world.csv, "--target",
                            "species", "--against", "production", "--rule", "accuracy >= 0.5",
                            "--rule", "f1 >= champion", "--json"), 0)
    report = result.json()
    assert report["champion"] is None
    assert any("no alias 'production' yet" in n for n in report["notes"])
    assert [c["skipped"] for c in report["checks"]] == [False, False, True]


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["iris/3", "--target", "species", "--rule", "accuracy >> 0.9"], 2, "invalid rule"),
    (["iris/3", "--target", "species", "--rule", "acc >= 0.9"], 2, "unknown metric 'acc'"),
    (["iris/3", "--target", "label"], 2, "has no column 'label'"),
    (["iris/9", "--target", "species"], 3, "version"),
    (["nope/1", "--target", "species"], 3, "nope"),
    (["iris/3", "--target", "species", "--against", "7"], 3, "7"),
    (["iris/3", "--target", "species", "--max-latency-ms", "0"], 2, "positive number"),
    (["iris/3", "--target", "species", "--task", "regression", "--rule", "accuracy > 0"], 2,
     "accuracy is not a regression metric"),
])
def test_bad_input_exit_codes(cli: Any, world: SimpleNamespace, args: list[str], code: int,
                              fragment: str) -> None:
    argv = ["gate", args[0], "--data", world.csv, *args[1:]]
    result = expect(cli.run(world.home, *argv), code)
    assert fragment in error_line(result)


@pytest.mark.parametrize(("data", "fragment"), [
    ("nan", "missing values"), ("wrong", "does not fit the candidate"), ("empty", "no rows"),
    ("missing", "evaluation data not found"),
])
def test_bad_data_exit_2(cli: Any, world: SimpleNamespace, data: str, fragment: str) -> None:
    path = getattr(world, data, world.root / "missing.csv")
    result = expect(cli.run(world.home, "gate", "iris/3", "--data", path, "--target",
                            "species"), 2)
    assert fragment in error_line(result)


def test_junit_into_a_missing_folder_fails_before_work(cli: Any, world: SimpleNamespace) -> None:
    result = expect(cli.run(world.home, "gate", "iris/3", "--data", world.csv, "--target",
                            "species", "--junit", world.root / "no" / "x.xml"), 2)
    assert "folder for --junit not found" in error_line(result)

