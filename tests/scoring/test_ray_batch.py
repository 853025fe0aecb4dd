"""``modelport predict --engine ray``: Ray Data on a local Ray instance (2 CPUs), the real CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.e2e.test_server_lifecycle import registry

pytestmark = pytest.mark.e2e


@pytest.fixture
def model_home(tmp_path: Path) -> tuple[Path, Any, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6))
    model = LogisticRegression().fit(X, X[:, 0] + X[:, 1] > 0)
    home = tmp_path / "home"
    cols = [f"f{i}" for i in range(6)]
    with registry(home) as reg:
        reg.log_model(model, "m", input_example=pd.DataFrame(X[:5], columns=cols))
    return home, model, X


def _parquet_folder(folder: Path, X: np.ndarray, parts: int) -> None:
    folder.mkdir()
    cols = [f"f{i}" for i in range(X.shape[1])]
    for i, chunk in enumerate(np.array_split(X, parts)):
        pd.DataFrame(chunk, columns=cols).to_parquet(folder / f"part-{i:03}.parquet")


def test_scores_a_folder_like_the_model(cli: Any, model_home: Any, tmp_path: Path) -> None:
    home, model, X = model_home
    big = np.concatenate([X] * 40)  # 20,000 rows in 8 files
    _parquet_folder(tmp_path / "in", big, 8)
    out = tmp_path / "out"
    result = cli.run(home, "predict", "m/1", "--input", tmp_path / "in", "--output", out,
                     "--engine", "ray", "--batch-size", "2500", "--actors", "2")
    assert result.returncode == 0, result
    assert "wrote 20,000 predictions of models:/m/1" in result.stderr + result.stdout
    got = pq.read_table(out).to_pandas()
    assert len(got) == len(big)
    # Row order across blocks is not guaranteed: compare as multisets of predictions,
    # and per row by joining on the features carried through.
    expected = model.predict(big)
    assert sorted(got["prediction"].tolist()) == sorted(expected.tolist())
    assert not any(p.name.startswith(".out.partial") for p in tmp_path.iterdir())


def test_bad_input_and_a_failing_model_leave_no_output(cli: Any, model_home: Any,
                                                       tmp_path: Path) -> None:
    home, _, X = model_home
    _parquet_folder(tmp_path / "in", X[:, :4], 2)  # 4 columns: the signature wants 6
    out = tmp_path / "out"
    failed = cli.run(home, "predict", "m/1", "--input", tmp_path / "in", "--output", out,
                     "--engine", "ray", "--actors", "1")
    assert failed.returncode != 0, failed
    assert "no output was written" in failed.stderr, failed
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.csv").write_text("f0\n1\n")
    (tmp_path / "mixed" / "b.parquet").write_bytes(b"x")
    for args, code, text in (
            (["--input", tmp_path / "mixed", "--output", out], 2, "mixes file types"),
            (["--input", tmp_path / "in"], 2, "--output FOLDER"),
            (["--input", tmp_path / "in", "--output", tmp_path / "mixed"], 2, "not an empty"),
            (["--input", tmp_path / "nope.parquet", "--output", out], 2, "not found")):
        r = cli.run(home, "predict", "m/1", *args, "--engine", "ray")
        assert r.returncode == code and text in r.stderr, r
    unknown = cli.run(home, "predict", "zz/1", "--input", tmp_path / "in", "--output", out,
                      "--engine", "ray")
    assert unknown.returncode == 3, unknown
    assert sorted(os.listdir(tmp_path / "mixed")) == ["a.csv", "b.parquet"]  # left untouched


class _DiesOnce:
    """A model whose process dies (``os._exit``, as a node lost mid-batch looks to Ray)
    on its first batch, or on every batch when ``always`` (batches, not the two-row
    input example it predicts while being registered)."""

    def __init__(self, marker: str, always: bool) -> None:
        self.marker, self.always = marker, always

    def predict(self, frame: Any) -> Any:
        if len(frame) > 2 and (self.always or not os.path.exists(self.marker)):
            open(self.marker, "a").close()
            os._exit(1)
        return frame["f0"].to_numpy() > 0


def _dying_model(home: Path, marker: Path, *, always: bool) -> str:
    from modelport import PythonModel

    class Dies(PythonModel):
        def __init__(self) -> None:
            self.inner = _DiesOnce(str(marker), always)

        def predict(self, model_input: Any) -> Any:
            return self.inner.predict(model_input)

    with registry(home) as reg:
        example = pd.DataFrame(np.ones((2, 6)), columns=[f"f{i}" for i in range(6)])
        version = reg.log_model(Dies(), "dies", input_example=example, trusted=True)
    return version.uri


def test_a_worker_dying_mid_batch_is_retried(cli: Any, model_home: Any,
                                             tmp_path: Path) -> None:
    home, _, X = model_home
    uri = _dying_model(home, tmp_path / "died", always=False)
    _parquet_folder(tmp_path / "in", np.concatenate([X] * 4), 4)
    out = tmp_path / "out"
    result = cli.run(home, "predict", uri, "--input", tmp_path / "in", "--output", out,
                     "--engine", "ray", "--actors", "1", "--trusted", "--batch-size", "500",
                     timeout=300)
    assert result.returncode == 0, result
    assert (tmp_path / "died").exists()  # it did die once
    got = pq.read_table(out).to_pandas()
    assert len(got) == 2000
    assert sorted(got["prediction"].tolist()) == sorted((np.concatenate([X] * 4)[:, 0] > 0)
                                                        .tolist())


def test_a_worker_that_keeps_dying_fails_the_job_with_no_output(
        cli: Any, model_home: Any, tmp_path: Path) -> None:
    home, _, X = model_home
    uri = _dying_model(home, tmp_path / "died", always=True)
    _parquet_folder(tmp_path / "in", X, 2)
    out = tmp_path / "out"
    result = cli.run(home, "predict", uri, "--input", tmp_path / "in", "--output", out,
                     "--engine", "ray", "--actors", "1", "--trusted", "--retries", "0",
                     timeout=300)
    assert result.returncode == 9, result
    assert "no output was written" in result.stderr, result
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
