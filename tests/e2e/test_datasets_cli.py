"""End to end: ``modelport datasets ...``, ``gate --same-training-schema`` and
``modelport lineage`` of a version that went through gate → canary → promoted.

Each CLI run starts a Python process, so the checks that need no process (names,
rendering, refusals) are in tests/registry/test_datasets.py and tests/lineage/."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelport.client import Registry
from modelport.config import Settings
from tests.e2e.conftest import Cli, Result

pytestmark = pytest.mark.e2e


def expect(result: Result, code: int, words: str = "") -> Result:
    """Assert the exit code (and, for errors, one clean error line holding ``words``)."""
    assert result.returncode == code, f"expected exit {code}\n{result}"
    if code not in (0, 10):
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and words in errors[0], str(result)
        assert "Traceback" not in result.stderr, str(result)
    return result


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Files: the iris features (CSV), 120 of them (Parquet), another schema (CSV), eval."""
    root = tmp_path_factory.mktemp("datasets")
    X, y = load_iris(return_X_y=True, as_frame=True)
    files = SimpleNamespace(root=root, home=root / "home", X=X, y=y,
                            csv=root / "iris.csv", subset=root / "subset.parquet",
                            changed=root / "changed.csv", eval=root / "eval.csv",
                            text=root / "notes.txt")
    X.to_csv(files.csv, index=False)
    X[:120].to_parquet(files.subset, index=False)
    X.drop(columns="petal width (cm)").assign(source=1.0).to_csv(files.changed, index=False)
    X.assign(species=y).to_csv(files.eval, index=False)
    files.text.write_text("not a table")
    return files


def test_register_list_show_diff(cli: Cli, world: SimpleNamespace) -> None:
    home = world.home
    first = expect(cli.run(home, "datasets", "register", "iris-data", world.csv, "--json",
                           "--description", "the iris features"), 0).json()
    assert first["created"] and first["dataset"]["uri"] == "datasets:/iris-data/1"
    assert first["dataset"]["rows"] == 150 and first["schema_changes"] == []
    again = expect(cli.run(home, "datasets", "register", "iris-data", world.csv), 0)
    assert "unchanged: the same content is datasets:/iris-data/1" in again.stderr
    assert "iris-data/1" in again.stdout and "sha256:" in again.stdout
    changed = expect(cli.run(home, "datasets", "register", "iris-data", world.changed), 0)
    assert "iris-data/2" in changed.stdout
    assert "warning:" in changed.stderr and "changes the schema of datasets:/iris-data/1" \
        in changed.stderr
    assert "- petal width (cm) (float64)" in changed.stderr and "+ source" in changed.stderr
    listed = expect(cli.run(home, "datasets", "list", "--json"), 0).json()
    assert [(d["name"], d["latest_version"]) for d in listed] == [("iris-data", 2)]
    shown = expect(cli.run(home, "datasets", "show", "iris-data/1", env={"COLUMNS": "200"}),
                   0).stdout
    assert "sepal length (cm)" in shown and "the iris features" in shown
    diff = expect(cli.run(home, "datasets", "diff", "iris-data/1", "datasets:/iris-data/2",
                          "--json"), 0).json()
    assert {(c["column"], c["change"]) for c in diff["schema"]} == {
        ("petal width (cm)", "removed"), ("source", "added")}
    assert all(f["psi"] == 0.0 for f in diff["features"])  # the kept columns are unchanged


def test_bad_input_is_one_error_line(cli: Cli, world: SimpleNamespace) -> None:
    expect(cli.run(world.home, "datasets", "register", "d", world.text), 2,
           "unsupported dataset file type .txt")
    expect(cli.run(world.home, "datasets", "show", "datasets:/nope/1"), 3,
           "no dataset named 'nope'")


def test_gate_rollout_and_lineage(cli: Cli, world: SimpleNamespace) -> None:
    home = world.home
    model = LogisticRegression(max_iter=500).fit(world.X, world.y)
    with Registry(settings=Settings.load(home)) as reg:
        with pytest.warns(UserWarning, match="changes the schema"):  # back from iris-data/2
            subset = reg.datasets.register("iris-data", world.subset).version  # iris-data/3
        reg.log_model(model, "iris", input_example=world.X[:5],
                      training_data="datasets:/iris-data/1")
        reg.set_alias("iris", "champion", 1)
        reg.log_model(model, "iris", input_example=world.X[:5], training_data=subset)
    passed = expect(cli.run(home, "gate", "iris/2", "--data", world.eval, "--target",
                            "species", "--same-training-schema", "--json"), 0).json()
    check = next(c for c in passed["checks"] if c["name"] == "training data schema")
    assert check["passed"] and not check["skipped"], check
    expect(cli.run(home, "rollout", "start", "iris", "--candidate", "iris/2", "--steps",
                   "10,100", "--step-requests", "5"), 0)
    expect(cli.run(home, "rollout", "promote", "iris"), 0)
    graph = expect(cli.run(home, "lineage", "iris/2", "--json"), 0).json()
    assert graph["root"] == "models:/iris/2"
    relations = {e["relation"] for e in graph["edges"]}
    assert {"training", "gated", "candidate", "rolled_out", "serves"} <= relations
    kinds: dict[str, Any] = {n["kind"]: n for n in graph["nodes"]}
    assert kinds["rollout"]["status"] == "promoted" and kinds["gate"]["passed"] is True
    tree = expect(cli.run(home, "lineage", "models:/iris/2"), 0).stdout
    for words in ("trained on datasets:/iris-data/3", "gate #1 passed vs v1",
                  "rollout #1 canary: promoted", "serving (stable, 100% of answers) in"):
        assert words in tree, tree
    deployed = expect(cli.run(home, "lineage", "datasets:/iris-data", "--deployed",
                              "--json"), 0).json()  # every version of the dataset
    assert [r["model_version"] for r in deployed] == ["models:/iris/2"]
