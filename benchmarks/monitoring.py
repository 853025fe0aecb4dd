"""Prediction log benchmark (issue 6): ``modelport serve`` throughput at concurrency 64
with the prediction log on (sampling 100%) and off, in one run (target: <= 10% loss).

Run ``.venv/bin/python benchmarks/monitoring.py`` (``--duration S`` per measurement,
default 5; ``--rounds N``, default 5; ``--quick`` for 1 s x 1 round). It reuses the
serving benchmark's models, processes and wrk driver (``benchmarks/serving.py``): the
same iris LogisticRegression and 100-tree forest, OIP JSON, one row per request,
batching ``max_batch_size: 64, max_latency_ms: 5``, every server pinned to CPU 0
(its log writer thread too), ``wrk`` to CPU 1.

Per model, two servers run side by side for the whole measurement: ``monitoring:
{enabled: false}`` and ``sample_rate: 1.0``. Rounds alternate their order, each after
1 s of warm-up load; a row is the median over rounds. After the rounds it reads the
logging servers' ``/metrics`` for rows written and dropped (a writer that fell behind
would drop rows rather than slow requests, which would flatter the throughput). Results
go to ``benchmarks/results/monitoring.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The serving benchmark's helpers (imported, not copied).
from serving import (
    BATCHING,
    NOISY_ENV,
    WARMUP_SECONDS,
    Case,
    Server,
    build_models,
    out,
    progress,
    register,
    run_wrk,
    running,
    uptime,
    write_lua,
)

RESULTS = Path(__file__).resolve().parent / "results" / "monitoring.json"
CONCURRENCY = 64
MAX_LOSS = 0.10  # the target: logging costs at most 10% of the throughput


def config(path: Path, name: str, root: Path, logging: bool) -> Path:
    model: dict[str, Any] = {"uri": f"models:/{name}@champion", "batching": BATCHING}
    spec: dict[str, Any] = {"models": [model]}
    if logging:
        model["monitoring"] = {"sample_rate": 1.0}
        spec["monitoring"] = {"root": str(root)}
    else:
        spec["monitoring"] = {"enabled": False}
    path.write_text(yaml.safe_dump(spec))
    return path


def log_counts(url: str) -> dict[str, float]:
    """The prediction log's row counters on one server's /metrics."""
    text = httpx.get(url + "/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "modelport_prediction_log_rows":
            for s in family.samples:
                if s.name.endswith("_total"):
                    counts[s.labels["outcome"]] = s.value
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--quick", action="store_true", help="1 s x 1 round (smoke run)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds = 1, 1
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            out.print(f"[red]{tool} missing: bash scripts/ensure-system-deps.sh[/]")
            return 2

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    workdir = Path(tempfile.mkdtemp(prefix="modelport-bench-monitoring-"))
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    started = datetime.now(UTC)
    load_before = uptime()
    home = workdir / "home"
    for key in NOISY_ENV:
        os.environ.pop(key, None)
    os.environ["MODELPORT_HOME"] = str(home)
    os.environ.setdefault("MODELPORT_USER", "bench")
    env = dict(os.environ)
    progress("fitting and registering the models")
    models = build_models(workdir)
    register(models, home)
    cases: list[Case] = []
    raw: dict[tuple[str, str], list[dict[str, Any]]] = {}
    counts: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        for m in models:
            for system, logging in (("off", False), ("log-100%", True)):
                cfg = config(workdir / f"serve-{m.name}-{system}.yaml", m.name,
                             workdir / f"monitoring-{m.name}", logging)
                server = stack.enter_context(running(Server(
                    f"modelport serve ({m.name}, log {system})",
                    [sys.executable, "-m", "modelport", "serve", "--config", str(cfg),
                     "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
                     "--no-controller"], env, workdir / f"{m.name}-{system}.log",
                    "/v2/health/ready")))
                case = Case(m.name, system, "oip-json", server, f"/v2/models/{m.name}/infer",
                            m.oip_body(), m.expected())
                case.check()
                case.lua = write_lua(workdir / f"{m.name}-{system}.lua", case.body)
                cases.append(case)
        for rnd in range(args.rounds):
            progress(f"c={CONCURRENCY} round {rnd + 1}/{args.rounds}")
            for i in range(0, len(cases), 2):
                pair = cases[i:i + 2] if rnd % 2 == 0 else cases[i:i + 2][::-1]
                for case in pair:
                    assert case.lua is not None
                    url = case.server.url + case.path
                    run_wrk(url, case.lua, CONCURRENCY, WARMUP_SECONDS)
                    r = run_wrk(url, case.lua, CONCURRENCY, args.duration)
                    raw.setdefault((case.model, case.system), []).append(r)
                    progress(f"  {case.model:6} {case.system:9} {r['rps']:>9,.0f} req/s  "
                             f"p50 {r['p50_us'] / 1e3:7.2f} ms  p99 {r['p99_us'] / 1e3:7.2f} "
                             f"ms  errors {r['errors']}")
        time.sleep(6)  # the writer's flush period: count what it wrote
        for case in cases:
            if case.system != "off":
                counts[case.model] = log_counts(case.server.url)
    rows = summarize(raw, counts)
    print_rows(rows)
    result = {"benchmark": "monitoring", "started": started.isoformat(),
              "duration_s": args.duration, "rounds": args.rounds,
              "concurrency": CONCURRENCY, "target_max_loss": MAX_LOSS,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
              "load_before": load_before, "load_after": uptime(), "rows": rows,
              "raw": {f"{k[0]}/{k[1]}": v for k, v in raw.items()}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    out.print(f"wrote {args.output}")
    return 0 if all(r["loss"] <= MAX_LOSS for r in rows) else 1


def summarize(raw: dict[tuple[str, str], list[dict[str, Any]]],
              counts: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    rows = []
    for model in dict.fromkeys(k[0] for k in raw):
        off, on = raw[(model, "off")], raw[(model, "log-100%")]
        rps_off = float(np.median([r["rps"] for r in off]))
        rps_on = float(np.median([r["rps"] for r in on]))
        logged = counts.get(model, {})
        rows.append({
            "model": model, "rps_off": rps_off, "rps_on": rps_on,
            "loss": 1 - rps_on / rps_off,
            "p50_ms_off": float(np.median([r["p50_us"] for r in off])) / 1e3,
            "p50_ms_on": float(np.median([r["p50_us"] for r in on])) / 1e3,
            "p99_ms_off": float(np.median([r["p99_us"] for r in off])) / 1e3,
            "p99_ms_on": float(np.median([r["p99_us"] for r in on])) / 1e3,
            "errors": sum(r["errors"] for r in off + on),
            "requests_on": sum(r["requests"] for r in on),
            "rows_written": logged.get("written", 0.0),
            "rows_dropped": logged.get("dropped", 0.0),
        })
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=f"prediction log overhead, c={CONCURRENCY}, OIP JSON, 1 row/request")
    for col in ("model", "req/s off", "req/s log 100%", "loss", "p99 off", "p99 on",
                "rows written", "dropped", "target"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(r["model"], f"{r['rps_off']:,.0f}", f"{r['rps_on']:,.0f}",
                      f"{r['loss']:.1%}", f"{r['p99_ms_off']:.2f} ms",
                      f"{r['p99_ms_on']:.2f} ms", f"{r['rows_written']:,.0f}",
                      f"{r['rows_dropped']:,.0f}",
                      "ok" if r["loss"] <= MAX_LOSS else f"FAIL (> {MAX_LOSS:.0%})")
    out.print(table)


if __name__ == "__main__":
    raise SystemExit(main())
