"""Dataset versions on a real registry: CSV and Parquet, idempotent re-registration,
schema changes, diffs, links from log_model, bad input, and tampering."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import (
    ArtifactIntegrityError,
    InvalidInputError,
    InvalidNameError,
    NotFoundError,
)


def table(n: int = 300, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(shift, 1.0, n), "b": rng.integers(0, 1000, n),
                         "kind": rng.choice(["s", "m", "l"], n)})


def blobs(reg: Registry) -> list[Path]:
    root = Path(reg.artifacts.describe()) / "sha256"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_csv_and_parquet_versions(registry: Registry, tmp_path: Path) -> None:
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    table().to_csv(csv, index=False)
    table(seed=1).to_parquet(parquet, index=False)
    one = registry.datasets.register("churn", csv, description="first").version
    assert (one.uri, one.rows, one.format, one.source) == ("datasets:/churn/1", 300, "csv",
                                                           "d.csv")
    assert one.data_digest == "sha256:" + hashlib.sha256(csv.read_bytes()).hexdigest()
    assert one.schema == [{"name": "a", "dtype": "float64"}, {"name": "b", "dtype": "int64"},
                          {"name": "kind", "dtype": "str"}]
    kinds = {f["name"]: f["kind"] for f in one.profile["features"]}
    assert kinds == {"a": "numeric", "b": "numeric", "kind": "categorical"}
    assert "sample" not in one.profile["features"][0]  # the row keeps the summary only
    two = registry.datasets.register("churn", parquet).version
    assert (two.version, two.format) == (2, "parquet")
    assert [v.version for v in registry.datasets.versions("churn")] == [2, 1]
    listed = registry.datasets.list()
    assert [(d.name, d.latest_version, d.version_count) for d in listed] == [("churn", 2, 2)]
    assert registry.datasets.get("churn").version == 2  # a bare name is the newest
    pd.testing.assert_frame_equal(registry.datasets.load("datasets:/churn/1"), table())
    assert len(registry.datasets.profile("churn/2").features[0].sample) == 300
    record = registry.audit.list(action="dataset.register")[-1]
    assert record.target == "dataset:churn/2" and record.after["rows"] == 300


def test_identical_content_is_one_version(sqlite_registry: Registry, tmp_path: Path) -> None:
    reg = sqlite_registry
    csv = tmp_path / "d.csv"
    table().to_csv(csv, index=False)
    first = reg.datasets.register("d", csv)
    stored = blobs(reg)
    again = reg.datasets.register("d", csv)
    assert first.created and not again.created and again.version == first.version
    frame = reg.datasets.register("d", table())  # the same values, as a frame
    assert not frame.created and frame.version.version == 1
    assert blobs(reg) == stored  # the frame's Parquet bundle was not kept
    assert len(reg.audit.list(action="dataset.register")) == 1


def test_csv_and_parquet_of_the_same_data_are_one_version(sqlite_registry: Registry,
                                                          tmp_path: Path) -> None:
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    table().to_csv(csv, index=False)
    table().to_parquet(parquet, index=False)
    one = sqlite_registry.datasets.register("d", csv).version
    two = sqlite_registry.datasets.register("d", parquet)
    assert not two.created and two.version == one  # the fingerprint is of the content


def test_a_schema_change_is_a_new_version_with_a_warning(registry: Registry) -> None:
    registry.datasets.register("d", table())
    changed = table(seed=2, shift=3.0).assign(b=lambda f: f["b"].astype(float), extra=1.5)
    with pytest.warns(UserWarning, match="changes the schema of datasets:/d/1"):
        result = registry.datasets.register("d", changed.drop(columns="kind"))
    assert result.created and result.previous is not None and result.previous.version == 1
    d = registry.datasets.diff("d/1", "datasets:/d/2")
    assert {(c.column, c.change) for c in d.schema} == {
        ("kind", "removed"), ("extra", "added"), ("b", "type_changed")}
    by_name = {f.feature: f for f in d.features}
    assert set(by_name) == {"a", "b"}
    assert by_name["a"].psi is not None and by_name["a"].psi > 1.0  # shifted by 3 std
    assert by_name["a"].new_mean == pytest.approx(3.0, abs=0.2)
    assert d.to_dict()["schema"][0]["change"] in ("removed", "added", "type_changed")


def test_profile_diff_of_similar_data_is_small(sqlite_registry: Registry) -> None:
    reg = sqlite_registry
    reg.datasets.register("d", table(n=2000, seed=0))
    reg.datasets.register("d", table(n=2000, seed=1).assign(
        a=lambda f: f["a"].where(f.index % 10 != 0)))  # 10% missing
    d = reg.datasets.diff("d/1", "d/2")
    assert d.schema == () and not d.same_content
    by_name = {f.feature: f for f in d.features}
    assert all(f.psi is not None and f.psi < 0.05 for f in d.features)
    assert (by_name["a"].old_missing, by_name["a"].new_missing) == (0.0, 0.1)
    reordered = table(n=50)[["kind", "a", "b"]]
    reg.datasets.register("r", table(n=50, seed=4))
    with pytest.warns(UserWarning, match="column order"):
        reg.datasets.register("r", reordered)


def test_bad_input_leaves_nothing(sqlite_registry: Registry, tmp_path: Path) -> None:
    reg = sqlite_registry
    (tmp_path / "d.json").write_text("[]")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("a,b\n")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    cases = {
        "d.json": "unsupported dataset file type .json",
        "missing.csv": "dataset file not found",
        "empty.csv": "is empty",
        "header.csv": "has no rows",
        "junk.parquet": "cannot read junk.parquet as PARQUET",
    }
    for name, words in cases.items():
        with pytest.raises(InvalidInputError, match=words):
            reg.datasets.register("d", tmp_path / name)
    with pytest.raises(InvalidInputError, match="cannot profile the dataset"):
        reg.datasets.register("d", pd.DataFrame({"t": pd.date_range("2026-01-01", periods=3)}))
    for bad in ("../etc", "a/b", "", "x" * 129, ".hidden"):
        with pytest.raises(InvalidNameError):
            reg.datasets.register(bad, table())
    assert blobs(reg) == [] and reg.datasets.list() == []
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        reg.datasets.get("datasets:/nope/1")
    reg.datasets.register("d", table())
    with pytest.raises(NotFoundError, match="no version 7"):
        reg.datasets.get("d/7")
    with pytest.raises(InvalidInputError, match="no aliases"):
        reg.datasets.get("datasets:/d@champion")


def test_a_tampered_dataset_is_never_loaded(sqlite_registry: Registry, tmp_path: Path) -> None:
    reg = sqlite_registry
    csv = tmp_path / "d.csv"
    table().to_csv(csv, index=False)
    v = reg.datasets.register("d", csv).version
    path = reg.artifacts.path_for(v.data_digest)  # type: ignore[attr-defined]
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"s", b"m", 1))
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        reg.datasets.load(v)
    with pytest.raises(ArtifactIntegrityError):
        reg.datasets.verify("d/1")


def test_log_model_links_frames_and_dataset_uris(registry: Registry) -> None:
    X = table()
    features = X[["a", "b"]]
    model = LogisticRegression(max_iter=300).fit(features, X["a"] > 0)
    v1 = registry.log_model(model, "churn", training_data=features, eval_data=features[:50])
    assert v1.training_data is not None and v1.training_data["dataset"] == \
        "datasets:/churn-training/1"
    assert registry.reference_profile("churn/1") is not None  # drift still has its profile
    links = {(lk.role, lk.dataset_uri) for lk in registry.datasets.of_model("churn/1")}
    assert links == {("training", "datasets:/churn-training/1"),
                     ("eval", "datasets:/churn-eval/1")}
    # The same frame again: the same dataset version, linked once more.
    registry.log_model(model, "churn", training_data=features)
    named = registry.datasets.register("churn-2026q4", features[:200]).version
    v3 = registry.log_model(model, "churn", training_data="datasets:/churn-2026q4/1",
                            eval_data=named)
    assert v3.training_data is not None and v3.training_data["rows"] == 200
    assert v3.training_data["fingerprint"] == named.fingerprint
    trained = registry.datasets.models("datasets:/churn-training/1", role="training")
    assert [lk.model_uri for lk in trained] == ["models:/churn/1", "models:/churn/2"]
    assert [lk.role for lk in registry.datasets.models(named)] == ["training", "eval"]
    assert [d.name for d in registry.datasets.list()] == [
        "churn-2026q4", "churn-eval", "churn-training"]
    record = registry.audit.list(action="version.register")[-1]
    assert record.after["datasets"] == {"training": "datasets:/churn-2026q4/1",
                                        "eval": "datasets:/churn-2026q4/1"}
    with pytest.raises(InvalidInputError, match="must be a dataset URI"):
        registry.log_model(model, "churn", training_data="data.csv")
    with pytest.raises(NotFoundError):
        registry.log_model(model, "churn", eval_data="datasets:/missing/1")


def test_a_failed_registration_keeps_no_dataset(home: Path) -> None:
    reg = Registry(settings=Settings.load(home))
    reg.list()  # creates the database
    con = sqlite3.connect(home / "registry.db")
    con.execute("CREATE TRIGGER fail BEFORE INSERT ON model_versions "
                "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    con.commit()
    X = table()[["a", "b"]]
    model = LogisticRegression().fit(X, X["a"] > 0)
    with pytest.raises(Exception, match="disk on fire"):
        reg.log_model(model, "m", training_data=X, eval_data=X[:20])
    assert blobs(reg) == [] and reg.datasets.list() == []
    assert reg.audit.list(action="dataset.register") == []
    reg.close()
