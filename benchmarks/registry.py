"""Registry benchmarks (issue 3): registering, loading and listing model versions.

Run ``make bench`` or ``.venv/bin/python benchmarks/registry.py`` (``--quick`` for a
smoke test in well under a minute). One run measures, on SQLite and on PostgreSQL:

1. ``Registry.log_model`` of a small LogisticRegression, N versions, per-version
   mean/p50/p99, next to the store-only cost (``store.create_version``) and the
   serialisation/artifact costs, so database time and serialisation time separate;
2. ``Registry.load_model`` against a bare ``skops.io.load`` of the same model,
   interleaved, for a LogisticRegression and a RandomForestClassifier;
3. ``Registry.list()`` / ``Registry.list(name)`` over 10,000 versions (1 model x 10,000
   versions and 100 models x 100 versions), and the ``modelport models list --json``
   process end to end next to bare interpreter start-up.

It prints tables and writes ``benchmarks/results/registry.json``. Everything it
creates (temp folders, PostgreSQL databases) is removed at the end, also on errors
and on Ctrl-C/SIGTERM. The machine may be shared and noisy: compare the ratios within
one run rather than absolute figures across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from rich.console import Console
from rich.table import Table
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.artifacts.bundle import Bundle, write_bundle
from modelport.client import Registry
from modelport.config import Settings
from modelport.flavors import TrustPolicy, get_flavor
from modelport.registry.entities import ModelVersion
from modelport.registry.store import NewVersion

RESULTS = Path(__file__).resolve().parent / "results" / "registry.json"
PG_ADMIN_URL = os.environ.get("MODELPORT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
LOAD_TARGET_RATIO = 1.3  # issue 3: load_model <= 1.3x a bare skops.io.load
LIST_TARGET_MS = 100.0  # issue 3: `models list` < 100 ms

out = Console(soft_wrap=False, width=140)
err = Console(stderr=True)


def progress(message: str) -> None:
    err.print(f"[dim]{datetime.now():%H:%M:%S}[/] {message}", highlight=False)


# -- statistics --------------------------------------------------------------------------


def summary(samples: list[float]) -> dict[str, float]:
    """Per-call statistics in milliseconds from samples in seconds."""
    ms = np.asarray(samples) * 1e3
    return {
        "n": len(samples),
        "mean_ms": float(ms.mean()),
        "p10_ms": float(np.percentile(ms, 10)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "total_s": float(ms.sum() / 1e3),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[bold red]MISSED[/]"


def show(title: str, columns: list[str], rows: list[list[str]], note: str = "") -> None:
    table = Table(*columns, title=title, title_justify="left", caption=note or None,
                  caption_justify="left")
    for row in rows:
        table.add_row(*row)
    out.print(table)


# -- environment -------------------------------------------------------------------------


class Postgres:
    """Fresh PostgreSQL databases for the benchmark, all dropped by ``drop_all``."""

    def __init__(self, admin_url: str) -> None:
        self.admin = admin_url.replace("postgresql+psycopg://", "postgresql://")
        self.created: list[str] = []
        self.version = ""

    def available(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.admin, connect_timeout=3) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                self.version = str(row[0]) if row else "?"
            return True
        except psycopg.OperationalError as exc:
            progress(f"[yellow]PostgreSQL not reachable at {self.admin}: {exc}[/]")
            return False

    def create(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"modelport_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        base = self.admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        return f"{base}/{name}"

    def drop_all(self) -> None:
        import psycopg

        if not self.created:
            return
        with psycopg.connect(self.admin, autocommit=True) as conn:
            while self.created:
                name = self.created.pop()
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                progress(f"dropped PostgreSQL database {name}")


def machine_info(pg: Postgres | None, tmp: Path) -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    fs = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        fs = subprocess.run(["df", "-T", str(tmp)], capture_output=True, text=True,
                            timeout=10).stdout.splitlines()[-1].split()[1]
    libs = {}
    for dist in ("modelport", "scikit-learn", "skops", "numpy", "SQLAlchemy", "psycopg", "rich"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            libs[dist] = importlib.metadata.version(dist)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "loadavg_at_start": list(os.getloadavg()),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg.version if pg else None,
        "tmp_dir": str(tmp.parent),
        "tmp_filesystem": fs,
        "libraries": libs,
    }


# -- models ------------------------------------------------------------------------------


def small_model() -> tuple[LogisticRegression, np.ndarray]:
    rng = np.random.default_rng(42)
    X = rng.normal(size=(200, 4))
    y = (X @ np.array([1.0, -0.5, 0.25, 0.0]) + rng.normal(scale=0.5, size=200) > 0).astype(int)
    return LogisticRegression().fit(X, y), X


def forest_model() -> tuple[RandomForestClassifier, np.ndarray]:
    X, y = make_classification(5000, 20, random_state=0)
    return RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0).fit(X, y), X


def as_new_version(v: ModelVersion) -> NewVersion:
    """The NewVersion that would recreate ``v`` (same artifact digest, same metadata)."""
    return NewVersion(**{fld.name: getattr(v, fld.name) for fld in fields(NewVersion)})


def run_metrics(i: int) -> dict[str, float]:
    return {"accuracy": 0.9 + (i % 97) * 1e-4, "log_loss": 0.3 - (i % 89) * 1e-4}


def blobs_under(root: Path) -> int:
    return sum(1 for p in (root / "sha256").rglob("*") if p.is_file())


# -- 1. registration ---------------------------------------------------------------------


def bench_register(reg: Registry, model: Any, X: np.ndarray, n: int) -> dict[str, Any]:
    for i in range(5):  # warm-up: imports, flavor lookup, statement compilation
        reg.log_model(model, "warmup", input_example=X[:5], metrics=run_metrics(i))
    blobs_before = blobs_under(Path(reg.artifacts.describe()))

    log_times: list[float] = []
    versions: list[ModelVersion] = []
    for i in range(n):
        dt, v = timed(lambda i=i: reg.log_model(
            model, "bench", input_example=X[:5], metrics=run_metrics(i),
            params={"C": 1.0, "run": i}))
        log_times.append(dt)
        versions.append(v)
    blobs_after = blobs_under(Path(reg.artifacts.describe()))

    prepared = as_new_version(versions[0])
    for i in range(5):
        reg.store.create_version("warmup-store", replace(prepared, metrics=run_metrics(i)))
    store_times: list[float] = []
    for i in range(n):
        new = replace(prepared, metrics=run_metrics(i), params={"C": 1.0, "run": i})
        dt, _ = timed(lambda new=new: reg.store.create_version("bench-store", new))
        store_times.append(dt)

    return {
        "log_model": summary(log_times),
        "store_create_version": summary(store_times),
        "versions": n,
        "distinct_artifact_digests": len({v.artifact_digest for v in versions}),
        "blobs_written": blobs_after - blobs_before,
    }


def bench_serialisation(model: Any, X: np.ndarray, artifacts: Path, n: int) -> dict[str, Any]:
    """skops.io.dumps alone, and the artifact write (hash + put + fsync) alone."""
    from modelport.artifacts.store import LocalArtifactStore
    from modelport.datafiles import example_to_json

    store = LocalArtifactStore(artifacts)
    dumps_times, bundle_times = [], []
    example = example_to_json(X[:5])
    for _ in range(5):
        write_bundle(store, {"model.skops": sio.dumps(model), "input_example.json": example},
                     {"flavor": "sklearn"})
    for _ in range(n):
        dt, data = timed(lambda: sio.dumps(model))
        dumps_times.append(dt)
        dt, _ = timed(lambda data=data: write_bundle(
            store, {"model.skops": data, "input_example.json": example}, {"flavor": "sklearn"}))
        bundle_times.append(dt)
    a, b = sio.dumps(model), sio.dumps(model)
    return {
        "skops_dumps": summary(dumps_times),
        "write_bundle": summary(bundle_times),
        "skops_dumps_deterministic": a == b,
        "skops_file_bytes": len(a),
    }


# -- 2. loading --------------------------------------------------------------------------


def bench_load(reg: Registry, home: Path, tmp: Path, cases: list[tuple[str, Any, np.ndarray]],
               reps: dict[str, int], warmup: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    old_home = os.environ.get("MODELPORT_HOME")
    os.environ["MODELPORT_HOME"] = str(home)  # modelport.load_model() opens Registry()
    try:
        for name, model, X in cases:
            v = reg.log_model(model, f"load-{name}", input_example=X[:5])
            uri = v.uri
            path = tmp / f"{name}.skops"
            sio.dump(model, path)
            trusted_list = sio.get_untrusted_types(file=path)
            variants: dict[str, Callable[[], Any]] = {
                "Registry.load_model (open registry)": lambda uri=uri: reg.load_model(uri),
                "modelport.load_model (new Registry per call)":
                    lambda uri=uri: modelport.load_model(uri),
                "bare skops.io.load + get_untrusted_types": lambda path=path: sio.load(
                    path, trusted=sio.get_untrusted_types(file=path)),
                "bare skops.io.load, trusted list precomputed":
                    lambda path=path, t=trusted_list: sio.load(path, trusted=t),
            }
            # Same predictions whichever way the model was loaded.
            expected = model.predict(X[:50])
            assert (reg.load_model(uri).predict(X[:50]) == expected).all()
            assert (sio.load(path, trusted=trusted_list).predict(X[:50]) == expected).all()

            keys = list(variants)
            samples: dict[str, list[float]] = {k: [] for k in keys}
            n = reps[name]
            progress(f"load: {name}, {warmup} warm-up + {n} interleaved reps x {len(keys)}")
            for rep in range(warmup + n):
                shift = rep % len(keys)
                for key in keys[shift:] + keys[:shift]:  # rotate the order: no variant first
                    dt, _ = timed(variants[key])
                    if rep >= warmup:
                        samples[key].append(dt)
            stats = {k: summary(s) for k, s in samples.items()}
            bare = stats["bare skops.io.load + get_untrusted_types"]["p50_ms"]
            floor = stats["bare skops.io.load, trusted list precomputed"]["p50_ms"]
            bare_p10 = stats["bare skops.io.load + get_untrusted_types"]["p10_ms"]
            for s in stats.values():
                s["ratio_vs_bare"] = s["p50_ms"] / bare
                s["ratio_vs_floor"] = s["p50_ms"] / floor
                s["ratio_vs_bare_p10"] = s["p10_ms"] / bare_p10
            results[name] = {"uri": uri, "file_bytes": path.stat().st_size,
                             "trusted_types_needed": list(trusted_list), "variants": stats,
                             "breakdown": load_breakdown(reg, uri, n)}
            path.unlink()
    finally:
        if old_home is None:
            os.environ.pop("MODELPORT_HOME", None)
        else:
            os.environ["MODELPORT_HOME"] = old_home
    return results


def load_breakdown(reg: Registry, uri: str, n: int) -> dict[str, Any]:
    """The steps of ``Registry.load_model`` timed one by one (median ms of each)."""
    policy = TrustPolicy(trusted=False, trusted_types=reg.settings.trusted_types)
    version = reg.get(uri)
    flavor = get_flavor(version.flavor)
    steps: dict[str, Callable[[], Any]] = {
        "registry lookup (Registry.get)": lambda: reg.get(uri),
        "open bundle (read + sha256 of manifest)":
            lambda: Bundle(reg.artifacts, version.artifact_digest),
        "flavor.library_versions (importlib.metadata)": flavor.library_versions,
        "flavor.load (read + sha256 of model file, skops.io.loads)":
            lambda: flavor.load(Bundle(reg.artifacts, version.artifact_digest), policy),
    }
    samples: dict[str, list[float]] = {k: [] for k in steps}
    for rep in range(n + 3):
        for key, fn in steps.items():
            dt, _ = timed(fn)
            if rep >= 3:
                samples[key].append(dt)
    return {k: summary(v) for k, v in samples.items()}


# -- 3. listing --------------------------------------------------------------------------


def fill(reg: Registry, model: Any, X: np.ndarray, layout: tuple[int, int]) -> dict[str, Any]:
    """``models`` x ``per_model`` versions: one real log_model, then store-level copies."""
    n_models, per_model = layout
    names = [f"bench-{m:03d}" for m in range(n_models)]
    first = reg.log_model(model, names[0], input_example=X[:5], metrics=run_metrics(0))
    prepared = as_new_version(first)
    times: list[float] = []
    i = 0
    for m, name in enumerate(names):
        for _ in range(per_model - (1 if m == 0 else 0)):
            i += 1
            new = replace(prepared, metrics=run_metrics(i), params={"run": i})
            dt, _ = timed(lambda name=name, new=new: reg.store.create_version(name, new))
            times.append(dt)
    return {"names": names, "create_version": summary(times)}


def bench_list(reg: Registry, names: list[str], runs: int) -> dict[str, Any]:
    calls: dict[str, Callable[[], list[Any]]] = {
        "list()": reg.list,
        f"list({names[0]!r})": lambda: reg.list(names[0]),
    }
    sizes = {k: len(fn()) for k, fn in calls.items()}  # also warms up
    for fn in calls.values():
        fn()
    samples: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(runs):
        for key, fn in calls.items():
            dt, _ = timed(fn)
            samples[key].append(dt)
    return {k: {**summary(s), "rows": sizes[k]} for k, s in samples.items()}


def run_process(argv: list[str], env: dict[str, str], cwd: Path, runs: int) -> dict[str, Any]:
    times, rows = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=600)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
        if "--json" in argv:
            rows = len(json.loads(proc.stdout))
    return {**summary(times), "first_ms": times[0] * 1e3, "rows": rows}


def cli_env(home: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
    env["MODELPORT_HOME"] = str(home)
    env["MODELPORT_USER"] = "bench"
    if database_url:
        env["MODELPORT_DATABASE_URL"] = database_url
    return env


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--versions", type=int, default=None,
                   help="versions registered with log_model per backend (default 1000)")
    p.add_argument("--list-versions", type=int, default=None,
                   help="versions for the list benchmark, a multiple of 100 (default 10000)")
    p.add_argument("--reps", type=int, default=None,
                   help="interleaved load repetitions per variant (default 200)")
    p.add_argument("--rf-reps", type=int, default=None,
                   help="load repetitions for the random forest (default: --reps)")
    p.add_argument("--list-runs", type=int, default=20, help="timed runs of each list call")
    p.add_argument("--cli-runs", type=int, default=None,
                   help="runs of each CLI process (default 5, --quick 1)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 100 versions, 1,000 list versions, 30 (forest: 5) reps, "
                   "1 CLI run")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    a = p.parse_args(argv)
    a.versions = a.versions or (100 if a.quick else 1000)
    a.list_versions = a.list_versions or (1000 if a.quick else 10000)
    a.reps = a.reps or (30 if a.quick else 200)
    a.rf_reps = a.rf_reps or (5 if a.quick else a.reps)
    a.cli_runs = a.cli_runs or (1 if a.quick else 5)
    if a.list_versions % 100:
        p.error("--list-versions must be a multiple of 100")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the cleanup below always runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for key in ("MODELPORT_DATABASE_URL", "MODELPORT_ARTIFACTS", "MODELPORT_TRUSTED_TYPES"):
        os.environ.pop(key, None)
    os.environ["MODELPORT_USER"] = "bench"

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="modelport-bench-"))
    pg = None if args.no_postgres else Postgres(PG_ADMIN_URL)
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: progress(f"removed {tmp}"))  # callbacks run last-in first-out
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        if pg is not None:
            stack.callback(pg.drop_all)
            if not pg.available():
                pg = None
        results = run(args, tmp, pg, stack)
        results["elapsed_s"] = time.perf_counter() - started
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
        out.print(f"\nresults written to {args.output} "
                  f"({results['elapsed_s']:.0f} s, quick={args.quick})")
    return 0


def open_registry(stack: contextlib.ExitStack, home: Path, url: str | None) -> Registry:
    reg = Registry(settings=Settings.load(home, database_url=url))
    stack.callback(reg.close)
    return reg


def run(args: argparse.Namespace, tmp: Path, pg: Postgres | None,
        stack: contextlib.ExitStack) -> dict[str, Any]:
    info = machine_info(pg, tmp)
    show("Machine", ["nproc", "cpu", "load avg (1/5/15 min)", "python", "sqlite",
                     "postgresql", "temp fs"],
         [[str(info["nproc"]), info["cpu"], " / ".join(f"{x:.1f}" for x in
           info["loadavg_at_start"]), info["python"], info["sqlite"],
           info["postgresql"] or "skipped", info["tmp_filesystem"]]],
         ", ".join(f"{k} {v}" for k, v in info["libraries"].items()))
    results: dict[str, Any] = {"machine": info, "quick": args.quick, "params": {
        "versions": args.versions, "list_versions": args.list_versions, "reps": args.reps,
        "rf_reps": args.rf_reps, "list_runs": args.list_runs, "cli_runs": args.cli_runs}}
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    if pg is not None:
        backends.append(("postgresql", "create"))

    lr, X = small_model()

    # 1. registration -------------------------------------------------------------------
    reg_results: dict[str, Any] = {}
    sqlite_reg: Registry | None = None
    sqlite_home = tmp / "register-sqlite"
    for backend, want_url in backends:
        home = tmp / f"register-{backend}"
        url = pg.create() if (want_url and pg) else None
        reg = open_registry(stack, home, url)
        if backend == "sqlite":
            sqlite_reg = reg
        progress(f"register: {args.versions} versions with log_model on {backend}")
        reg_results[backend] = bench_register(reg, lr, X, args.versions)
    progress("register: skops.io.dumps and write_bundle alone")
    ser = bench_serialisation(lr, X, tmp / "serialisation-artifacts", min(args.versions, 200))
    results["register"] = {"backends": reg_results, "serialisation": ser}

    rows = []
    for backend, r in reg_results.items():
        for label, key in (("log_model (end to end)", "log_model"),
                           ("store.create_version (DB only)", "store_create_version")):
            s = r[key]
            rows.append([backend, label, str(s["n"]), f(s["mean_ms"]), f(s["p50_ms"]),
                         f(s["p99_ms"]), f(s["total_s"], 1)])
        rows.append([backend, "log_model - create_version (mean)", "", f(
            r["log_model"]["mean_ms"] - r["store_create_version"]["mean_ms"]), "", "", ""])
    for label, key in (("skops.io.dumps alone", "skops_dumps"),
                       ("write_bundle alone (hash, write, fsync)", "write_bundle")):
        s = ser[key]
        rows.append(["-", label, str(s["n"]), f(s["mean_ms"]), f(s["p50_ms"]),
                     f(s["p99_ms"]), f(s["total_s"], 1)])
    dedup = "; ".join(
        f"{b}: {r['versions']} versions -> {r['distinct_artifact_digests']} distinct artifact "
        f"digests, {r['blobs_written']} new blobs" for b, r in reg_results.items())
    show(f"1. Register {args.versions} versions of a LogisticRegression (ms per version)",
         ["backend", "operation", "n", "mean", "p50", "p99", "total s"], rows,
         f"{dedup}. skops.io.dumps of the same fitted model twice gives identical bytes: "
         f"{ser['skops_dumps_deterministic']} ({ser['skops_file_bytes']:,} bytes).")

    # 2. loading ------------------------------------------------------------------------
    assert sqlite_reg is not None
    progress("load: fitting the random forest")
    rf, X_rf = forest_model()
    load = bench_load(sqlite_reg, sqlite_home, tmp, [("logreg", lr, X), ("forest", rf, X_rf)],
                      {"logreg": args.reps, "forest": args.rf_reps}, warmup=10 if not
                      args.quick else 3)
    results["load"] = load
    rows = []
    for name, r in load.items():
        for label, s in r["variants"].items():
            target = ""
            if "load_model" in label:
                target = verdict(s["ratio_vs_bare"] <= LOAD_TARGET_RATIO)
            rows.append([f"{name} ({r['file_bytes'] / 1024:,.0f} KiB)", label, str(s["n"]),
                         f(s["p50_ms"]), f(s["p10_ms"]), f(s["ratio_vs_bare"]),
                         f(s["ratio_vs_floor"]), f(s["ratio_vs_bare_p10"]), target])
    show("2. load_model vs bare skops.io.load (SQLite registry, interleaved; ms)",
         ["model", "variant", "n", "median", "p10", "x bare", "x floor", "x bare (p10)",
          f"<= {LOAD_TARGET_RATIO}x bare"], rows,
         "bare = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path)); "
         "floor = skops.io.load with the trusted list computed once beforehand. Ratios are "
         "of medians (target column) and of 10th percentiles, which a busy machine inflates "
         "less. load_model includes the registry lookup and the sha256 check of every file.")

    rows = []
    for name, r in load.items():
        total = sum(s["p50_ms"] for s in r["breakdown"].values())
        for step, s in r["breakdown"].items():
            rows.append([name, step, f(s["p50_ms"], 3), f"{s['p50_ms'] / total:.0%}"])
        rows.append([name, "sum of step medians", f(total, 3), ""])
    show("2b. Where load_model's time goes (median ms per step, timed separately)",
         ["model", "step", "median", "share"], rows,
         "flavor.load re-opens the bundle, so the manifest is read twice in this breakdown.")

    # 3. listing ------------------------------------------------------------------------
    layouts = [(1, args.list_versions), (args.list_versions // 100, 100)]
    list_results: dict[str, Any] = {}
    cli_results: dict[str, Any] = {}
    py = sys.executable
    progress("list: interpreter start-up baselines")
    base_env = cli_env(tmp / "empty-home", None)
    cli_results["python -c pass"] = run_process([py, "-c", "pass"], base_env, tmp,
                                                args.cli_runs)
    cli_results["python -c 'import modelport'"] = run_process(
        [py, "-c", "import modelport"], base_env, tmp, args.cli_runs)
    cli_results["python -m modelport --version"] = run_process(
        [py, "-m", "modelport", "--version"], base_env, tmp, args.cli_runs)
    for backend, want_url in backends:
        for n_models, per_model in layouts:
            key = f"{backend} {n_models}x{per_model}"
            home = tmp / f"list-{backend}-{n_models}x{per_model}"
            url = pg.create() if (want_url and pg) else None
            reg = open_registry(stack, home, url)
            progress(f"list: filling {key} ({n_models * per_model} versions)")
            filled = fill(reg, lr, X, (n_models, per_model))
            progress(f"list: timing {key}")
            timings = bench_list(reg, filled["names"], args.list_runs)
            env = cli_env(home, url)
            cli = {
                "models list --json": run_process(
                    [py, "-m", "modelport", "models", "list", "--json"], env, tmp,
                    args.cli_runs),
                f"models list {filled['names'][0]} --json": run_process(
                    [py, "-m", "modelport", "models", "list", filled["names"][0], "--json"],
                    env, tmp, args.cli_runs),
            }
            list_results[key] = {"fill_create_version": filled["create_version"],
                                 "api": timings, "cli": cli}
    results["list"] = {"layouts": list_results, "startup": cli_results}

    rows = []
    for key, r in list_results.items():
        for call, s in r["api"].items():
            ok = verdict(s["p50_ms"] < LIST_TARGET_MS) if call == "list()" else ""
            rows.append([key, f"Registry.{call}", str(s["rows"]), f(s["p50_ms"]),
                         f(s["p99_ms"]), ok])
        for call, s in r["cli"].items():
            ok = verdict(s["p50_ms"] < LIST_TARGET_MS) if call == "models list --json" else ""
            rows.append([key, f"process: modelport {call}", str(s["rows"]), f(s["p50_ms"]),
                         f(s["max_ms"]), ok])
    for call, s in cli_results.items():
        rows.append(["-", f"process: {call}", "", f(s["p50_ms"]), f(s["max_ms"]), ""])
    show(f"3. Listing {args.list_versions:,} versions (ms; API: median/p99 of "
         f"{args.list_runs}; process: median/max of {args.cli_runs})",
         ["layout", "call", "rows", "median", "p99/max", f"< {LIST_TARGET_MS:.0f} ms"], rows)
    rows = [[k, str(r["fill_create_version"]["n"]), f(r["fill_create_version"]["mean_ms"]),
             f(r["fill_create_version"]["p50_ms"]), f(r["fill_create_version"]["p99_ms"]),
             f(r["fill_create_version"]["total_s"], 1)] for k, r in list_results.items()]
    show("store.create_version while filling (ms per version, growing tables)",
         ["layout", "n", "mean", "p50", "p99", "total s"], rows)
    return results


if __name__ == "__main__":
    sys.exit(main())
