"""End to end: the real ``modelport`` CLI, run as a subprocess against a temporary home.

Every test makes its own data and model files (fixed seeds), drives ``python -m
modelport`` and checks exit codes and output. To keep the module fast, commands that
do not depend on each other run concurrently (``cli.many``), read-only tests share
one registry built once per module, and the slow ``modelport demo`` starts in the
background when the module starts and is only waited for by ``test_demo``.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.registry.db import HEAD_REVISION

pytestmark = pytest.mark.e2e

FEATURES = ["f0", "f1", "f2", "f3"]


# -- helpers ------------------------------------------------------------------------------


def expect(result: Any, code: int) -> Any:
    """Assert a run's exit code, showing the whole run when it differs."""
    assert result.returncode == code, f"expected exit {code}\n{result}"
    return result


def blob_files(home: Path) -> list[Path]:
    """Every file in the local artifact store's blob folder."""
    root = home / "artifacts" / "sha256"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def error_line(result: Any) -> str:
    """The one ``error:`` line a failing command prints on stderr."""
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, f"expected exactly one error line\n{result}"
    assert "Traceback" not in result.stderr, f"unexpected traceback\n{result}"
    return lines[0]


def columns(signature: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, dtype) of each input column of a dataframe signature."""
    return [(c["name"], c["dtype"]) for c in signature["inputs"]["columns"]]


def labels(frame: pd.DataFrame) -> list[Any]:
    """The predicted labels in an output table: ``prediction``, or a label column."""
    if "prediction" in frame.columns:
        return frame["prediction"].tolist()
    label_cols = [c for c in frame.columns if "label" in str(c).lower()]
    assert label_cols, f"no prediction or label column in {list(frame.columns)}"
    return frame[label_cols[0]].tolist()


# -- data and model files (made once per module, fixed seeds) -----------------------------


class Files:
    """Paths of the module's data and model files, and the in-memory models' predictions."""

    def __init__(self, root: Path) -> None:
        from sklearn.linear_model import LogisticRegression

        self.root = root
        rng = np.random.default_rng(42)
        X = rng.normal(size=(100, 4))
        y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(int)
        self.X, self.y = X, y
        frame = pd.DataFrame(X, columns=FEATURES)

        self.csv = root / "data.csv"
        frame.to_csv(self.csv, index=False)
        self.json = root / "data.json"
        self.json.write_text(json.dumps(frame.to_dict(orient="records")))
        self.parquet = root / "data.parquet"
        frame.to_parquet(self.parquet, index=False)
        self.missing_col = root / "missing_col.csv"
        frame[FEATURES[:3]].to_csv(self.missing_col, index=False)
        self.xlsx = root / "data.xlsx"
        self.xlsx.write_bytes(b"PK\x03\x04 not really a spreadsheet")

        import skops.io as sio

        sk = LogisticRegression(max_iter=500).fit(X, y)
        self.skops = root / "sk.skops"
        sio.dump(sk, self.skops)
        sk2 = LogisticRegression(C=0.05, max_iter=500).fit(X, y)
        self.skops2 = root / "sk2.skops"
        sio.dump(sk2, self.skops2)

        # Tiny trusted pickles that need no ML library to load: cheap stand-ins where a
        # test is about the registry (aliases, deletes), not about a framework.
        self.light1 = root / "light1.pkl"
        self.light1.write_bytes(pickle.dumps(SimpleNamespace(predict=np.sign)))
        self.light2 = root / "light2.pkl"
        self.light2.write_bytes(pickle.dumps(SimpleNamespace(predict=np.abs)))

        self.pkl = root / "m.pkl"
        with self.pkl.open("wb") as fh:
            pickle.dump(sk2, fh)
        import joblib

        self.joblib = root / "m.joblib"
        joblib.dump(sk, self.joblib)

        from xgboost import XGBClassifier

        xgb = XGBClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
        self.xgb_json = root / "m.json"
        xgb.save_model(self.xgb_json)
        self.xgb_ubj = root / "m.ubj"
        xgb.save_model(self.xgb_ubj)

        from lightgbm import LGBMClassifier

        lgbm = LGBMClassifier(n_estimators=10, random_state=0, verbose=-1).fit(X, y)
        self.lgbm = root / "m.txt"
        lgbm.booster_.save_model(self.lgbm)

        from skl2onnx import to_onnx

        self.onnx = root / "m.onnx"
        self.onnx.write_bytes(to_onnx(sk, X[:1].astype(np.float32)).SerializeToString())

        # Files whose content does not match their extension.
        self.skops_as_onnx = root / "skops_bytes.onnx"
        self.skops_as_onnx.write_bytes(self.skops.read_bytes())
        self.random_as_skops = root / "random.skops"
        self.random_as_skops.write_bytes(np.random.default_rng(7).bytes(4096))
        self.csv_as_txt = root / "table.txt"
        self.csv_as_txt.write_bytes(self.csv.read_bytes())

        self.expected = {
            "sklearn": sk.predict(X).tolist(),
            "sklearn2": sk2.predict(X).tolist(),
            "xgboost": xgb.predict(X).tolist(),
            # A LightGBM text file holds no class labels: registered from a file, it is a
            # bare Booster, and a Booster predicts probabilities.
            "lightgbm": lgbm.booster_.predict(X).tolist(),
            "onnx": sk.predict(X).tolist(),  # the ONNX graph was converted from ``sk``
        }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return Files(tmp_path_factory.mktemp("files"))


# -- the demo, started early in the background --------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def demo_process(request: pytest.FixtureRequest, cli: Any,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Start ``modelport demo`` when the module starts, if ``test_demo`` is selected.

    The demo takes ~10 s; running it beside the other tests keeps the module fast.
    """
    wanted = any(item.name == "test_demo" and item.module is request.module
                 for item in request.session.items)
    if not wanted:
        yield {}
        return
    root = tmp_path_factory.mktemp("demo")
    home, work = root / "home", root / "work"
    out, err = root / "stdout.txt", root / "stderr.txt"
    # Files, not pipes: nobody reads the demo's output until test_demo runs.
    with out.open("w") as out_fh, err.open("w") as err_fh:
        proc = cli.start(home, "demo", "--workdir", work, stdout=out_fh, stderr=err_fh)
    try:
        yield {"proc": proc, "home": home, "work": work, "stdout": out, "stderr": err}
    finally:
        cli.stop(proc)


# -- one shared registry for the tests that only read it ----------------------------------

# name -> (file attribute of Files, expected flavor)
REGISTERED = {
    "sk": ("skops", "sklearn"),  # registered with --input-example
    "xgb": ("xgb_json", "xgboost"),
    "xgbu": ("xgb_ubj", "xgboost"),
    "lgbm": ("lgbm", "lightgbm"),
    "onnx": ("onnx", "onnx"),
}


class Shared:
    """A registry home with one version of each file type, ``sk`` at version 2 with
    ``sk@champion`` -> 1 (``sk/1`` has a signature from ``--input-example``), and
    ``hist`` at version 2 for the alias test (which is the only one to touch it)."""

    def __init__(self, home: Path, registered: dict[str, Any]) -> None:
        self.home = home
        self.registered = registered  # name -> the run of ``models register NAME ... --json``


@pytest.fixture(scope="module")
def shared(cli: Any, files: Files, tmp_path_factory: pytest.TempPathFactory) -> Shared:
    home = tmp_path_factory.mktemp("shared") / "home"
    expect(cli.run(home, "db", "upgrade"), 0)  # create the database before concurrent writers
    names = [*REGISTERED, "hist"]
    commands = []
    for name in names:
        if name == "hist":
            commands.append(["models", "register", name, files.light1, "--trusted", "--json"])
            continue
        cmd = ["models", "register", name, getattr(files, REGISTERED[name][0]), "--json"]
        if name == "sk":
            cmd += ["--input-example", files.csv, "--metric", "acc=0.9", "--tag", "team=e2e"]
        commands.append(cmd)
    registered = dict(zip(names, cli.many(home, commands), strict=True))
    for name in ("sk", "hist"):
        expect(registered[name], 0)
    for result in cli.many(home, [
        ["models", "register", "sk", files.skops2, "--json"],
        ["models", "register", "hist", files.light2, "--trusted", "--json"],
        ["models", "alias", "sk", "champion", "1", "--reason", "first"],
    ]):
        expect(result, 0)
    return Shared(home, registered)


# -- 1. register each file type, predict like the in-memory model -------------------------


@pytest.mark.parametrize("name", list(REGISTERED))
def test_register_detects_flavor(shared: Shared, files: Files, name: str) -> None:
    result = expect(shared.registered[name], 0)
    version = result.json()
    assert version["flavor"] == REGISTERED[name][1]
    assert version["name"] == name
    assert version["version"] == 1
    assert version["uri"] == f"models:/{name}/1"
    assert version["artifact_digest"].startswith("sha256:")
    assert version["created_by"] == "tester"
    assert version["deleted_at"] is None
    assert version["tags"]["source_file"] == getattr(files, REGISTERED[name][0]).name
    if name == "sk":
        assert version["metrics"] == {"acc": 0.9}
        assert version["tags"]["team"] == "e2e"
        assert columns(version["signature"]) == [(f, "float64") for f in FEATURES]
    else:
        assert version["signature"] is None  # registered without --input-example


@pytest.fixture(scope="module")
def predictions(cli: Any, shared: Shared, files: Files,
                tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    """``predict NAME/1 --input data.csv --output out.csv`` for every registered file type."""
    out = tmp_path_factory.mktemp("predictions")
    targets = {name: out / f"{name}.csv" for name in REGISTERED}
    results = cli.many(shared.home, [
        ["predict", f"{name}/1", "--input", files.csv, "--output", target]
        for name, target in targets.items()
    ])
    return {name: (r, targets[name]) for name, r in zip(targets, results, strict=True)}


@pytest.mark.parametrize("name", list(REGISTERED))
def test_predict_matches_in_memory_model(predictions: dict[str, tuple[Any, Path]],
                                         files: Files, name: str) -> None:
    result, target = predictions[name]
    expect(result, 0)
    assert "Traceback" not in result.stderr
    assert f"wrote 100 predictions of models:/{name}/1" in result.stderr
    frame = pd.read_csv(target)
    assert len(frame) == 100
    expected = files.expected[REGISTERED[name][1]]
    if name == "lgbm":
        np.testing.assert_allclose(frame["prediction"].to_numpy(), expected, rtol=1e-6)
    else:
        # Class labels, like the in-memory model's predict (XGBoost files saved by
        # XGBClassifier say so in learner.attributes.scikit_learn).
        assert labels(frame) == expected
    assert not list(target.parent.glob(".*.partial")), "a temp output file was left behind"


# -- 2. pickle and joblib need --trusted, at registration and at load ---------------------


def test_pickle_and_joblib_need_trusted(cli: Any, files: Files, tmp_path: Path) -> None:
    home = tmp_path / "home"
    refused = cli.many(home, [
        ["models", "register", "p", files.pkl, "--json"],
        ["models", "register", "j", files.joblib, "--json"],
    ])
    for result in refused:
        expect(result, 6)
        assert result.stdout == ""
        line = error_line(result)
        assert len(result.stderr.strip().splitlines()) == 1, f"not one line\n{result}"
        assert "--trusted" in line
    assert expect(cli.run(home, "models", "list", "--json"), 0).json() == []
    assert blob_files(home) == []

    trusted = cli.many(home, [
        ["models", "register", "p", files.pkl, "--trusted", "--json"],
        ["models", "register", "j", files.joblib, "--trusted", "--json"],
    ])
    for result in trusted:
        assert expect(result, 0).json()["flavor"] == "pickle"

    untrusted_load, p_ok, j_ok = cli.many(home, [
        ["predict", "p/1", "--input", files.csv],
        ["predict", "p/1", "--input", files.csv, "--trusted"],
        ["predict", "j/1", "--input", files.csv, "--trusted"],
    ])
    expect(untrusted_load, 6)
    assert untrusted_load.stdout == ""
    assert "--trusted" in error_line(untrusted_load)
    assert expect(p_ok, 0).json() == {"model": "models:/p/1",
                                      "predictions": files.expected["sklearn2"]}
    assert expect(j_ok, 0).json() == {"model": "models:/j/1",
                                      "predictions": files.expected["sklearn"]}


# -- 3. content that does not match the extension -----------------------------------------


def test_content_not_matching_extension_is_refused(cli: Any, files: Files,
                                                   tmp_path: Path) -> None:
    home = tmp_path / "home"
    expect(cli.run(home, "db", "upgrade"), 0)
    bad = [files.skops_as_onnx, files.random_as_skops, files.csv_as_txt]
    results = cli.many(home, [["models", "register", f"bad{i}", f, "--json"]
                              for i, f in enumerate(bad)])
    problems = []  # checked for every file before failing, so one cause hides no other
    for path, result in zip(bad, results, strict=True):
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        if (result.returncode != 2 or len(lines) != 1 or "does not match" not in lines[0]
                or path.suffix not in lines[0] or "Traceback" in result.stderr):
            problems.append(str(result))
    assert not problems, "\n\n".join(problems)
    assert "sklearn" in error_line(results[0])  # skops bytes named .onnx: says what it is
    assert expect(cli.run(home, "models", "list", "--all", "--json"), 0).json() == []
    assert blob_files(home) == []


# -- 4. invalid model names ---------------------------------------------------------------


BAD_NAMES = ["../etc", "a/b", "-x", "a" * 129, "bad name", ".hidden"]


def test_invalid_model_names_are_refused(cli: Any, shared: Shared, files: Files) -> None:
    # "--" so that "-x" reaches the command as an argument, not as an unknown option.
    results = cli.many(shared.home, [["models", "register", "--json", "--", name, files.skops]
                                     for name in BAD_NAMES])
    for name, result in zip(BAD_NAMES, results, strict=True):
        expect(result, 2)
        assert result.stdout == "", name
        assert "invalid model name" in error_line(result), name
    listed = {m["name"] for m in expect(cli.run(shared.home, "models", "list", "--json"), 0)
              .json()}
    assert listed.isdisjoint(BAD_NAMES)


# -- 5. list and show ---------------------------------------------------------------------


def test_list_and_show(cli: Any, shared: Shared) -> None:
    models, versions, show1, show2, show_model, champion, champion_json = cli.many(
        shared.home, [
            ["models", "list", "--json"],
            ["models", "list", "sk", "--json"],
            ["models", "show", "sk/1", "--json"],
            ["models", "show", "models:/sk/2", "--json"],
            ["models", "show", "sk", "--json"],
            ["models", "show", "sk@champion"],
            ["models", "show", "sk@champion", "--json"],
        ])
    by_name = {m["name"]: m for m in expect(models, 0).json()}
    assert {"sk", "hist"} <= set(by_name)
    assert by_name["sk"]["latest_version"] == 2
    assert by_name["sk"]["version_count"] == 2
    assert by_name["sk"]["aliases"] == {"champion": 1}
    assert list(by_name) == sorted(by_name)

    listed = expect(versions, 0).json()
    assert [v["version"] for v in listed] == [2, 1]  # newest first
    assert [v["aliases"] for v in listed] == [[], ["champion"]]

    registered = shared.registered["sk"].json()
    v1 = expect(show1, 0).json()
    assert v1["uri"] == "models:/sk/1"
    assert v1["flavor"] == "sklearn"
    assert v1["artifact_digest"] == registered["artifact_digest"]
    assert v1["aliases"] == ["champion"]
    assert v1["signature"]["inputs"]["type"] == "dataframe"
    assert columns(v1["signature"]) == [(f, "float64") for f in FEATURES]
    assert "outputs" in v1["signature"]
    v2 = expect(show2, 0).json()
    assert v2["uri"] == "models:/sk/2"
    assert v2["signature"] is None
    assert v2["artifact_digest"] != v1["artifact_digest"]

    model = expect(show_model, 0).json()
    assert (model["name"], model["latest_version"], model["version_count"]) == ("sk", 2, 2)

    expect(champion, 0)
    assert "models:/sk/1" in champion.stdout
    assert "champion" in champion.stdout
    # The table may fold long values on a narrow (80-column) output, but never crops them.
    assert registered["artifact_digest"] in "".join(champion.stdout.split())
    assert expect(champion_json, 0).json() == v1


# -- 6. aliases and their history ---------------------------------------------------------


def test_alias_moves_are_recorded(cli: Any, shared: Shared, files: Files) -> None:
    home = shared.home
    set1 = expect(cli.run(home, "models", "alias", "hist", "champion", "1", "--reason", "r1",
                          "--json"), 0).json()
    assert (set1["from_version"], set1["to_version"]) == (None, 1)
    set2 = expect(cli.run(home, "models", "alias", "hist", "champion", "2", "--reason", "r2"), 0)
    assert "hist@champion" in set2.stderr
    removed = expect(cli.run(home, "models", "alias", "hist", "champion", "--delete",
                             "--reason", "r3", "--json"), 0).json()
    assert (removed["from_version"], removed["to_version"]) == (2, None)

    missing_version, unknown_alias, removed_alias, history = cli.many(home, [
        ["models", "alias", "hist", "champion", "7"],
        ["predict", "hist@nope", "--input", files.csv],
        ["models", "show", "hist@champion"],
        ["models", "history", "hist", "--json"],
    ])
    assert "7" in error_line(expect(missing_version, 3))
    assert "nope" in error_line(expect(unknown_alias, 3))
    assert "champion" in error_line(expect(removed_alias, 3))

    events = expect(history, 0).json()
    assert [(e["alias"], e["from_version"], e["to_version"], e["actor"], e["reason"])
            for e in events] == [
        ("champion", None, 1, "tester", "r1"),
        ("champion", 1, 2, "tester", "r2"),
        ("champion", 2, None, "tester", "r3"),
    ]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert all(e["name"] == "hist" for e in events)


# -- 7. verify, and a tampered artifact ---------------------------------------------------


def test_verify_detects_a_tampered_blob(cli: Any, files: Files, tmp_path: Path) -> None:
    home = tmp_path / "home"
    registered = expect(cli.run(home, "models", "register", "t", files.skops, "--json"), 0).json()
    report = expect(cli.run(home, "models", "verify", "t/1", "--json"), 0).json()
    assert report["ok"] is True
    assert report["uri"] == "models:/t/1"
    assert report["digest"] == registered["artifact_digest"]
    assert report["files"] >= 1
    assert report["bytes"] >= files.skops.stat().st_size

    blobs = blob_files(home)
    model_blob = next(p for p in blobs if p.read_bytes() == files.skops.read_bytes())
    assert not model_blob.stat().st_mode & stat.S_IWUSR, "blobs should be read-only"
    os.chmod(model_blob, 0o644)
    data = bytearray(model_blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_blob.write_bytes(bytes(data))

    verify, predict, debug = cli.many(home, [
        ["models", "verify", "t/1", "--json"],
        ["predict", "t/1", "--input", files.csv],
        ["--debug", "models", "verify", "t/1"],
    ])
    for result in (verify, predict):
        expect(result, 5)
        assert result.stdout == ""
        assert "corrupt" in error_line(result)
    expect(debug, 5)
    assert "Traceback" in debug.stderr
    assert "ArtifactIntegrityError" in debug.stderr
    assert "corrupt" in debug.stderr


# -- 8. soft delete -----------------------------------------------------------------------


def test_deleted_version_is_gone_but_listed_with_all(cli: Any, files: Files,
                                                     tmp_path: Path) -> None:
    home = tmp_path / "home"
    expect(cli.run(home, "models", "register", "d", files.light1, "--trusted"), 0)
    deleted = expect(cli.run(home, "models", "delete", "d/1", "--yes", "--reason", "bad"), 0)
    assert "deleted d/1" in deleted.stderr
    show, listed_all, listed, predict = cli.many(home, [
        ["models", "show", "d/1"],
        ["models", "list", "d", "--all", "--json"],
        ["models", "list", "d", "--json"],
        ["predict", "d/1", "--input", files.csv, "--trusted"],
    ])
    assert "deleted" in error_line(expect(show, 3))
    assert "deleted" in error_line(expect(predict, 3))
    versions = expect(listed_all, 0).json()
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["deleted_at"] is not None
    assert expect(listed, 0).json() == []


# -- 9. predict: file formats, stdout, signature errors -----------------------------------


def test_predict_formats_and_input_errors(cli: Any, shared: Shared, files: Files,
                                          tmp_path: Path) -> None:
    out_json, out_parquet = tmp_path / "out.json", tmp_path / "out.parquet"
    absent = tmp_path / "[absent]" / "data.csv"  # brackets: rich markup must not eat them
    (from_json, from_parquet, to_stdout, missing, xlsx_in, xlsx_out,
     no_input) = cli.many(shared.home, [
        ["predict", "sk/1", "--input", files.json, "--output", out_json],
        ["predict", "models:/sk/1", "--input", files.parquet, "--output", out_parquet],
        ["predict", "sk@champion", "--input", files.csv],
        ["predict", "sk/1", "--input", files.missing_col],
        ["predict", "sk/1", "--input", files.xlsx],
        ["predict", "sk/1", "--input", files.csv, "--output", tmp_path / "out.xlsx"],
        ["predict", "sk/1", "--input", absent, "--output", tmp_path / "out.csv"],
    ])
    expected = files.expected["sklearn"]

    expect(from_json, 0)
    assert [r["prediction"] for r in json.loads(out_json.read_text())] == expected
    expect(from_parquet, 0)
    assert pd.read_parquet(out_parquet)["prediction"].tolist() == expected
    assert expect(to_stdout, 0).json() == {"model": "models:/sk/1", "predictions": expected}

    line = error_line(expect(missing, 2))
    assert "'f3'" in line and "missing column" in line
    assert ".xlsx" in error_line(expect(xlsx_in, 2))
    assert ".xlsx" in error_line(expect(xlsx_out, 2))
    assert str(absent) in error_line(expect(no_input, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.parquet"]


# -- 10. database migrations --------------------------------------------------------------


def test_db_upgrade_is_idempotent_and_newer_schema_is_refused(cli: Any, files: Files,
                                                              tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = expect(cli.run(home, "db", "upgrade", "--json"), 0).json()
    assert first["from"] is None
    assert first["to"] == HEAD_REVISION
    again, current = cli.many(home, [["db", "upgrade", "--json"], ["db", "current", "--json"]])
    assert expect(again, 0).json()["from"] == HEAD_REVISION
    assert again.json()["to"] == HEAD_REVISION
    assert expect(current, 0).json() == {"current": HEAD_REVISION, "head": HEAD_REVISION}

    db_file = home / "registry.db"
    assert db_file.is_file()
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()

    results = cli.many(home, [
        ["models", "list"],
        ["models", "register", "m", files.skops],
        ["db", "upgrade"],
    ])
    for result in results:
        expect(result, 7)
        line = error_line(result)
        assert "9999" in line
        assert "upgrade modelport" in line


# -- 11. version, first use ---------------------------------------------------------------


def test_version_and_first_use(cli: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    version, listed = cli.many(home, [["--version"], ["models", "list"]])
    assert expect(version, 0).stdout.strip() == f"modelport {modelport.__version__}"
    expect(listed, 0)
    assert "name" in listed.stdout  # the (empty) table's header
    assert (home / "registry.db").is_file()
    assert expect(cli.run(home, "models", "list", "--json"), 0).json() == []


# -- 12. PostgreSQL -----------------------------------------------------------------------


@pytest.mark.postgres
def test_registry_on_postgres(cli: Any, files: Files, tmp_path: Path, pg_url: str) -> None:
    import psycopg

    home = tmp_path / "home"
    env = {"MODELPORT_DATABASE_URL": pg_url}
    # A light pickle: this test is about the database, not about a framework.
    registered = expect(cli.run(home, "models", "register", "pg", files.light1, "--trusted",
                                "--json", env=env), 0).json()
    assert registered["flavor"] == "pickle"
    assert registered["version"] == 1
    models, versions = cli.many(home, [["models", "list", "--json"],
                                       ["models", "list", "pg", "--json"]], env=env)
    assert [m["name"] for m in expect(models, 0).json()] == ["pg"]
    assert [v["artifact_digest"] for v in expect(versions, 0).json()] == [
        registered["artifact_digest"]]
    assert not (home / "registry.db").exists()
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM registered_models")]
    assert names == ["pg"]


# -- 13. the demo -------------------------------------------------------------------------


def test_demo(demo_process: dict[str, Any]) -> None:
    proc = demo_process["proc"]
    code = proc.wait(timeout=300)
    stdout, stderr = demo_process["stdout"].read_text(), demo_process["stderr"].read_text()
    assert code == 0, f"demo failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    assert "demo finished" in stdout
    assert "Traceback" not in stderr
    assert (demo_process["work"] / "iris_predictions.csv").is_file()
    assert (demo_process["home"] / "registry.db").is_file()
    # The delivery half: v2 promoted by the controller, v3 rolled back on its own, and
    # no request failed meanwhile.
    assert "rollout #1 of iris/2: promoted" in stdout
    assert "rollout #2 of iris/3: rolled_back" in stdout
    assert "gate exit code 10" in stdout and "failed requests: 0" in stdout
    from modelport.client import Registry

    with Registry(demo_process["home"]) as reg:
        kinds = [e.kind for e in reg.deployments.events("iris")]
        # v2 promoted, v3 rolled back; then the retrained v4 promoted by its canary.
        assert kinds.count("promoted") == 2 and kinds.count("rolled_back") == 1
        assert kinds.index("rolled_back") < len(kinds) - 1 - kinds[::-1].index("promoted")
        assert [g.passed for g in reg.records.gate_results("iris")] == [True, True, False,
                                                                         True]
        # The watching half: the server's own evaluator fired the drift alert, the
        # report and the dashboard saw the drifted traffic.
        # It may have resolved since: the retrained v4's drift reference is the drifted
        # data it was trained on, so once v4 serves, the same traffic is no drift.
        drift = [a for a in reg.alerts.list("iris") if a.rule == "petal-length-drift"]
        assert drift, stdout
        assert drift[0].state == "firing" or (drift[0].value or 0.0) < 0.2, drift[0]
        # The closing loop: the accuracy alert retrained iris on the labelled rows,
        # gated against the champion, and a canary (never a switch) promoted it.
        assert reg.get("iris@champion").version == 4
        [retrain] = reg.retrains.history("iris")
        assert (retrain.status, retrain.rule) == ("succeeded", "accuracy-low"), retrain
        assert retrain.details["version_uri"] == "models:/iris/4"
        assert (retrain.details["strategy"], retrain.details["rollout_status"]) == (
            "canary", "promoted")
        rollout = reg.deployments.rollout(retrain.details["rollout_id"])
        assert rollout.steps == [20, 50, 100] and rollout.created_by == "modelport-retrain"
        assert reg.get("iris/4").created_by == "modelport-retrain"
    assert "6,000 drifted rows scored; 6,000 labels posted" in stdout
    assert "firing: " in stdout and "/dashboard" in stdout
    html = (demo_process["work"] / "iris_report.html").read_text()
    assert "petal_length" in html
    for line in ("alert accuracy-low fired → trigger #", "✓ train (train) succeeded",
                 "✓ register (register) succeeded", "registered models:/iris/4",
                 "✓ gate (gate) succeeded", "canary: iris/4 gets 20% of the traffic",
                 "✓ rollout (rollout) succeeded", "rollout 3 of iris/4 promoted",
                 "succeeded: pipeline retrain succeeded", "iris@champion is now v4"):
        assert line in stdout, line
