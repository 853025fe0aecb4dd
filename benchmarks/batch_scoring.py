"""Batch scoring benchmark (issue 8): ``modelport predict`` in one process vs ``--engine ray``.

Run ``.venv/bin/python benchmarks/batch_scoring.py`` (``--rows N``, default 10,000,000;
``--quick`` for 1,000,000). The data: N rows x 20 float64 features (seeded), written
once as one Parquet file (row groups of 250,000) for the single-process command and as
20 Parquet files of the same rows for Ray. The model: a LogisticRegression fitted on
20,000 of them. Both runs go through the real CLI (a subprocess each, as a user types
it), end to end: start-up, model load (digest-checked), reading, scoring, writing; Ray's
figure includes starting a local Ray instance (reported apart). Outputs are checked:
same row count and the same multiset of predictions. Results go to
``benchmarks/results/batch_scoring.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
FEATURES = 20


def _write(root: Path, rows: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    single, folder = root / "data.parquet", root / "parts"
    folder.mkdir()
    cols = [f"f{i}" for i in range(FEATURES)]
    per_file = rows // 20
    writer = None
    for i in range(20):
        n = per_file if i < 19 else rows - per_file * 19
        table = pa.Table.from_pandas(pd.DataFrame(rng.normal(size=(n, FEATURES)), columns=cols),
                                     preserve_index=False)
        pq.write_table(table, folder / f"part-{i:02}.parquet", row_group_size=250_000)
        writer = writer or pq.ParquetWriter(single, table.schema)
        writer.write_table(table, row_group_size=250_000)
    assert writer is not None
    writer.close()
    return single, folder


def _cli(home: Path, *args: str) -> tuple[float, str]:
    env = {**os.environ, "MODELPORT_HOME": str(home)}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "modelport", *args], env=env, check=False,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"modelport {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return seconds, out.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    rows = 1_000_000 if opts.quick else opts.rows
    from sklearn.linear_model import LogisticRegression

    import modelport

    with tempfile.TemporaryDirectory(prefix="modelport-batch-") as tmp:
        root = Path(tmp)
        home = root / "home"
        os.environ["MODELPORT_HOME"] = str(home)
        t0 = time.perf_counter()
        single, folder = _write(root, rows)
        written = time.perf_counter() - t0
        cols = [f"f{i}" for i in range(FEATURES)]
        X = pq.read_table(folder / "part-00.parquet").to_pandas().iloc[:20_000]
        model = LogisticRegression(max_iter=500).fit(X, (X[cols[0]] + X[cols[1]] > 0))
        with modelport.Registry() as reg:
            reg.log_model(model, "big", input_example=X.iloc[:5])
        local_s, _ = _cli(home, "predict", "big/1", "--input", str(single), "--output",
                          str(root / "local.parquet"), "--batch-size", "250000")
        ray_s, _ = _cli(home, "predict", "big/1", "--input", str(folder), "--output",
                          str(root / "ray_out"), "--engine", "ray", "--batch-size", "250000")
        local = pq.read_table(root / "local.parquet").column("prediction").to_numpy()
        ray_pred = pq.read_table(root / "ray_out").column("prediction").to_numpy()
        assert len(local) == len(ray_pred) == rows
        assert int(local.sum()) == int(ray_pred.sum())  # same multiset of booleans
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import ray; ray.init(num_cpus=2, "
                        "include_dashboard=False); ray.shutdown()"], check=True,
                       capture_output=True)
        ray_init = time.perf_counter() - t0
    result = {"rows": rows, "features": FEATURES, "write_seconds": round(written, 1),
              "local_seconds": round(local_s, 1), "ray_seconds": round(ray_s, 1),
              "ray_start_seconds": round(ray_init, 1),
              "local_rows_per_s": round(rows / local_s), "ray_rows_per_s": round(rows / ray_s),
              "ray_vs_local": round(local_s / ray_s, 2), "cpus": os.cpu_count(),
              "load_average": os.getloadavg()}
    print(json.dumps(result, indent=2))
    print(f"\n| engine | seconds | rows/s | vs single process |\n|---|--:|--:|--:|\n"
          f"| single process (`modelport predict`) | {local_s:.1f} | "
          f"{rows / local_s:,.0f} | 1.00x |\n"
          f"| Ray Data (`--engine ray`, 2 CPUs) | {ray_s:.1f} | {rows / ray_s:,.0f} | "
          f"{local_s / ray_s:.2f}x |\n(Ray start-up alone: {ray_init:.1f} s)")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "batch_scoring.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
