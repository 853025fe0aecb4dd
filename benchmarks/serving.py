"""Serving benchmark (issue 4): ``modelport serve`` next to its floor, its ceiling and the
apps people write by hand.

Run ``.venv/bin/python benchmarks/serving.py`` (``--duration S`` per measurement,
default 5; ``--rounds N``, default 3; ``--quick`` for a smoke run of 1 s x 1 round;
``--profile`` to cProfile the modelport iris server at concurrency 64 afterwards).
Needs Debian's ``wrk`` and the ``bench`` extra (flask, gunicorn). One run measures
requests/s, p50 and p99 at concurrency 1, 8 and 64, one row per request, for:

- the floor: in-process ``model.predict`` of one row, timed in a loop on the servers'
  CPU (single-threaded, so its requests/s is ``1e6 / median µs`` at every concurrency);
- the HTTP ceiling: a no-op Starlette endpoint on uvicorn with uvloop and httptools;
- a hand-written Starlette ``/predict`` calling ``model.predict`` on the event loop;
- the blog tutorials' Flask ``/predict`` under gunicorn (one sync worker);
- ``modelport serve``, OIP JSON (``/v2/models/NAME/infer``) and ``/predict``, one server
  per model with batching ``max_batch_size: 64, max_latency_ms: 5``;
- a control for tail latency: the no-op app spinning, per request, modelport's own CPU
  time per iris OIP request (measured at the start of the run, c=64, against the
  no-op), so it has modelport's throughput and none of its code (``apps/busy_app.py``).

Models: LogisticRegression on iris (4 features) and RandomForest (100 trees, depth 10)
on ``make_classification(5000, 20)``, fitted here. Every server is pinned to CPU 0
(``taskset -c 0``), ``wrk`` to CPU 1. All servers run for the whole measurement (idle
when not under load) so the systems can be interleaved: for each concurrency, each
round measures every system once, in a rotated order, each after 1 s of warm-up
load and only once the system measured before it has stopped working off the requests
wrk left queued (its CPU time idle); a row is the median over rounds. That way a
neighbour's load on a shared machine hits every system alike, and the issue's targets,
computed as ratios within the run, stay meaningful. It prints a table and writes
``benchmarks/results/serving.json`` with every raw number. Every process it starts is
stopped at the end, also on errors and on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import rich.markup
import yaml
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import modelport

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
RESULTS = HERE / "results" / "serving.json"
CONCURRENCY = (1, 8, 64)
SERVER_CPU = 0
LOAD_CPU = 1
WARMUP_SECONDS = 1
# wrk's default 2 s timeout would drop the slowest answers of the unbatched apps at
# c=64 from their latency and count them as errors; 10 s measures them instead.
WRK_TIMEOUT = "10s"
BATCHING = {"max_batch_size": 64, "max_latency_ms": 5}
# The targets.
IRIS_VS_NOOP = 0.5  # iris, c=64: modelport >= 0.5x the no-op ceiling
FOREST_VS_HAND = 10.0  # forest, c=64: modelport >= 10x the hand-written Starlette app
FOREST_P99_MS = 50.0  # ... with p99 <= 50 ms
C1_OVERHEAD_US = 100.0  # c=1: modelport p50 - in-process predict <= 100 µs
NOISY_ENV = ("MODELPORT_DATABASE_URL", "MODELPORT_ARTIFACTS", "MODELPORT_TRUSTED_TYPES",
             "PROMETHEUS_MULTIPROC_DIR")
FEATURE_NAMES_WARNING = "X does not have valid feature names"
JSON_HEADERS = {"content-type": "application/json"}

out = Console(soft_wrap=False, width=150)
err = Console(stderr=True)


def progress(message: str) -> None:
    err.print(f"[dim]{datetime.now():%H:%M:%S}[/] {message}", highlight=False)


class BenchError(RuntimeError):
    """Something the benchmark needs is missing or went wrong; the message says what."""


# -- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process pinned to ``SERVER_CPU``, in its own process group.

    ``argv`` may hold ``{port}``; readiness is a GET of ``ready_path`` answering 200, or
    a POST of ``ready_body`` when given.
    """

    label: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_path: str
    ready_body: bytes | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", str(SERVER_CPU), *argv], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(f"{self.label} exited with {self.proc.returncode}:\n"
                                     f"{self.log()}")
                with contextlib.suppress(httpx.TransportError):
                    if self.ready_body is None:
                        answer = client.get(self.url + self.ready_path)
                    else:
                        answer = client.post(self.url + self.ready_path,
                                             content=self.ready_body, headers=JSON_HEADERS)
                    if answer.status_code == 200:
                        return
                time.sleep(0.1)
        raise BenchError(f"{self.label} not ready after {timeout:g}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's process group (gunicorn's master and
        worker too), from /proc: the benchmark already needs Linux for taskset."""
        if self.proc is None:
            return 0.0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:  # the process ended while we looked
                continue
            fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
            if int(fields[2]) == self.proc.pid:  # pgrp: start_new_session made it the pid
                total += int(fields[11]) + int(fields[12])  # utime + stime, in ticks
        return total / os.sysconf("SC_CLK_TCK")

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until the server stops working off requests wrk gave up on. An unbatched
        app at c=64 has a second or more of them queued when wrk stops (the forest's
        Flask p50 is over 1 s), which would land on the next system's measurement."""
        deadline = time.monotonic() + timeout
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.cpu_seconds()
            if now - before < 0.01:  # under 5% of a core over 200 ms: idle
                return
            before = now

    def stop(self) -> None:
        """SIGTERM to the whole group (gunicorn's master and worker), SIGKILL after 15 s."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Whatever is left of the group (a worker whose master is gone).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    progress(f"starting {server.label}")
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- wrk -----------------------------------------------------------------------------------


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        hint = (f"{' and '.join(missing)} missing: `sudo apt-get install -y wrk` on "
                "Debian/Ubuntu (taskset is in util-linux), or `bash scripts/ensure-system-deps.sh`")
        if os.environ.get("CI", "").lower() == "true":
            raise BenchError(f"CI: {hint}")
        err.print(f"[red]{hint}[/]", highlight=False)
        raise SystemExit(2)
    for dist in ("flask", "gunicorn"):
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            raise BenchError(f"{dist} missing: .venv/bin/pip install -e '.[bench]'") from None
    if not {SERVER_CPU, LOAD_CPU} <= os.sched_getaffinity(0):
        raise BenchError(f"needs CPUs {SERVER_CPU} (servers) and {LOAD_CPU} (wrk)")


def write_lua(path: Path, body: bytes) -> Path:
    text = body.decode()
    if "]==]" in text:  # cannot happen with these JSON bodies; Lua long brackets need it
        raise BenchError("body not representable as a Lua long string")
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{text}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


_UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests/s, p50/p99 (µs), request count and errors from wrk's ``--latency`` report."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in", text, re.M)
    pct = {m.group(1): float(m.group(2)) * _UNIT_US[m.group(3)]
           for m in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)}
    if rps is None or total is None or "50" not in pct or "99" not in pct:
        raise BenchError(f"cannot parse wrk's output:\n{text}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                             (int(g) for g in sock.groups()), strict=True)) if sock else {}
    non2xx_count = int(non2xx.group(1)) if non2xx else 0
    return {
        "rps": float(rps.group(1)),
        "p50_us": pct["50"],
        "p99_us": pct["99"],
        "requests": int(total.group(1)),
        "non2xx": non2xx_count,
        "socket_errors": socket_errors,
        "errors": non2xx_count + sum(socket_errors.values()),
    }


def run_wrk(url: str, lua: Path, connections: int, seconds: int) -> dict[str, Any]:
    cmd = ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{connections}",
           f"-d{seconds}s", "--timeout", WRK_TIMEOUT, "--latency", "-s", str(lua), url]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse_wrk(proc.stdout)


# -- the models and the floor --------------------------------------------------------------


@dataclass
class BenchModel:
    name: str
    model: Any
    row: list[float]  # the one row every request sends
    example: Any  # input_example it is registered with
    joblib_path: Path
    frame_row: pd.DataFrame | None = None  # iris: the row as the model was fitted on it

    def predict_body(self) -> bytes:
        return json.dumps({"features": [self.row]}).encode()

    def oip_body(self) -> bytes:
        return json.dumps({"inputs": [{"name": "input-0", "shape": [1, len(self.row)],
                                       "datatype": "FP64", "data": self.row}]}).encode()

    def expected(self) -> list[Any]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING)
            return np.asarray(self.model.predict(np.asarray([self.row]))).tolist()


def build_models(workdir: Path) -> list[BenchModel]:
    """Fit both models on data made here and save them with joblib (our own files)."""
    iris = load_iris(as_frame=True)
    x_iris: pd.DataFrame = iris.data
    logreg = LogisticRegression(max_iter=1000).fit(x_iris, iris.target)
    x_fc, y_fc = make_classification(5000, 20, random_state=0)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0)
    forest.fit(x_fc, y_fc)
    models = [
        BenchModel("iris", logreg, [float(v) for v in x_iris.iloc[0]], x_iris.head(5),
                   workdir / "iris.joblib", frame_row=x_iris.head(1)),
        BenchModel("forest", forest, [float(v) for v in x_fc[0]], x_fc[:5],
                   workdir / "forest.joblib"),
    ]
    for m in models:
        joblib.dump(m.model, m.joblib_path)
    return models


def register(models: list[BenchModel], home: Path) -> None:
    from modelport.client import Registry
    from modelport.config import Settings

    registry = Registry(settings=Settings.load(home))
    for m in models:
        version = registry.log_model(m.model, m.name, input_example=m.example)
        registry.set_alias(m.name, "champion", version.version)


def lean_floor(model: Any) -> Callable[[Any], Any] | None:
    """modelport's lean scikit-learn predict for ``model`` (None if it has none)."""
    try:
        from modelport.flavors.sklearn_lean import lean_predict
    except ImportError:  # an older modelport
        return None
    return lean_predict(model, model.predict)


def what_predict_gets(home: Path, name: str) -> dict[str, Any]:
    """What the server hands ``name``'s predict: its signature kind and whether the
    bare-array fast path of table signatures is on (decided as the server does it)."""
    try:
        from modelport.client import Registry
        from modelport.config import Settings
        from modelport.serving.deployment import BatchingConfig, Deployment

        loaded = Registry(settings=Settings.load(home)).load_model(f"models:/{name}@champion")
        dep = Deployment(name, loaded, BatchingConfig())
        try:
            dep.warm()
            kind = (dep.input_schema or {}).get("type", "none")
            fast = dep.array_predict is not None
            return {"signature": kind, "array_fast_path": fast,
                    "predict_gets": "DataFrame" if kind == "dataframe" and not fast
                    else "ndarray"}
        finally:
            dep._executor.shutdown()
    except Exception as exc:  # informational only
        progress(f"[yellow]could not tell what {name}'s predict gets: {exc}[/]")
        return {"error": str(exc)}


@contextlib.contextmanager
def on_cpu(cpu: int) -> Iterator[None]:
    """Run this thread on one CPU (the one the servers get) for the duration."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def time_floor(fn: Callable[[], Any], seconds: float, max_calls: int = 50_000
               ) -> dict[str, Any]:
    """Median/p99 of ``fn()`` in µs, called back to back on the servers' CPU."""
    with on_cpu(SERVER_CPU), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING)
        for _ in range(20):
            fn()
        samples: list[int] = []
        clock = time.perf_counter_ns
        deadline = clock() + int(seconds * 1e9)
        while len(samples) < max_calls and clock() < deadline:
            t0 = clock()
            fn()
            samples.append(clock() - t0)
    us = np.asarray(samples) / 1e3
    p50 = float(np.median(us))
    return {"rps": 1e6 / p50, "p50_us": p50, "p99_us": float(np.percentile(us, 99)),
            "requests": len(samples), "non2xx": 0, "socket_errors": {}, "errors": 0}


# -- cases and rows ------------------------------------------------------------------------


@dataclass
class Case:
    """One system/protocol/model combination measured over HTTP."""

    model: str  # iris, forest, or "-" for the no-op
    system: str  # noop, starlette, flask, modelport
    protocol: str  # /predict or oip-json
    server: Server
    path: str
    body: bytes
    expected: list[Any] | None  # the predictions the answer must hold (None: no-op)
    lua: Path | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.system, self.protocol)

    def check(self) -> None:
        """One request: 200, and the in-process model's predictions."""
        answer = httpx.post(self.server.url + self.path, content=self.body,
                            headers=JSON_HEADERS, timeout=30)
        where = f"{self.server.label} {self.path}"
        if answer.status_code != 200:
            raise BenchError(f"{where}: {answer.status_code} {answer.text[:300]}")
        if self.expected is None:
            return
        payload = answer.json()
        got = (payload["outputs"][0]["data"] if self.protocol == "oip-json"
               else payload["predictions"])
        if got != self.expected:
            raise BenchError(f"{where}: predicted {got}, in-process {self.expected}")


@dataclass
class Row:
    model: str
    system: str  # floor-numpy, floor-df, floor-lean, noop, starlette, flask, modelport
    protocol: str  # in-process, /predict, oip-json
    concurrency: int
    rps: float  # medians over rounds
    p50_us: float
    p99_us: float
    requests: int  # totals over rounds
    errors: int
    rounds: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


def aggregate(key: tuple[str, str, str], c: int, runs: list[dict[str, Any]],
              note: str = "") -> Row:
    def median(name: str) -> float:
        return float(np.median([r[name] for r in runs]))

    return Row(*key, c, rps=median("rps"), p50_us=median("p50_us"), p99_us=median("p99_us"),
               requests=sum(r["requests"] for r in runs),
               errors=sum(r["errors"] for r in runs), rounds=runs, note=note)


def find(rows: list[Row], model: str, system: str, protocol: str, c: int) -> Row:
    for r in rows:
        if (r.model, r.system, r.protocol, r.concurrency) == (model, system, protocol, c):
            return r
    raise KeyError((model, system, protocol, c))


# -- targets -----------------------------------------------------------------------------


def targets(rows: list[Row]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []

    def ratio(a: float, b: float) -> float:
        # A reference that answered nothing (a smoke run on a busy machine) makes any
        # throughput infinitely better, not a crash that loses the whole run.
        return a / b if b else float("inf")

    def add(name: str, value: float, op: str, limit: float, unit: str, detail: str) -> None:
        met = value >= limit if op == ">=" else value <= limit
        result.append({"target": name, "value": round(value, 3), "op": op, "limit": limit,
                       "unit": unit, "met": bool(met), "detail": detail})

    noop = find(rows, "-", "noop", "/predict", 64)
    for proto in ("oip-json", "/predict"):
        mp = find(rows, "iris", "modelport", proto, 64)
        add(f"iris c64 modelport {proto} / no-op", ratio(mp.rps, noop.rps), ">=", IRIS_VS_NOOP, "x",
            f"{mp.rps:,.0f} vs {noop.rps:,.0f} req/s")
    hand = find(rows, "forest", "starlette", "/predict", 64)
    for proto in ("oip-json", "/predict"):
        mp = find(rows, "forest", "modelport", proto, 64)
        add(f"forest c64 modelport {proto} / hand-written Starlette", ratio(mp.rps, hand.rps),
            ">=",
            FOREST_VS_HAND, "x", f"{mp.rps:,.0f} vs {hand.rps:,.0f} req/s")
        add(f"forest c64 modelport {proto} p99", mp.p99_us / 1e3, "<=", FOREST_P99_MS, "ms",
            f"p50 {mp.p50_us / 1e3:.2f} ms")
    for model in ("iris", "forest"):
        # The floor modelport's server is held to: predict on what the server passes (an
        # ndarray: a tensor signature, or iris's all-float table on the fast path).
        floor = find(rows, model, "floor-numpy", "in-process", 1)
        for proto in ("oip-json", "/predict"):
            mp = find(rows, model, "modelport", proto, 1)
            add(f"{model} c1 modelport {proto} p50 - in-process predict",
                mp.p50_us - floor.p50_us, "<=", C1_OVERHEAD_US, "µs",
                f"{mp.p50_us:,.0f} - {floor.p50_us:,.0f} µs")
    bad = [f"{r.model}/{r.system}/{r.protocol}/c{r.concurrency}: {r.errors}"
           for r in rows if r.errors]
    result.append({"target": "zero errors in every run", "value": sum(r.errors for r in rows),
                   "op": "==", "limit": 0, "unit": "errors", "met": not bad,
                   "detail": ", ".join(bad) or "none"})
    return result


def calibrate(noop: Case, modelport: Case, seconds: int) -> float:
    """modelport's own CPU µs per request at c=64 (its time per request over the
    no-op's, both on the one server CPU), for the fixed-cost control."""
    assert noop.lua is not None and modelport.lua is not None
    rates = {}
    for case in (noop, modelport):
        url = case.server.url + case.path
        run_wrk(url, case.lua, 64, WARMUP_SECONDS)
        rates[case.system] = run_wrk(url, case.lua, 64, max(seconds, 3))["rps"]
    cost = max(0.0, 1e6 / rates["modelport"] - 1e6 / rates["noop"])
    progress(f"calibrated the control: modelport {rates['modelport']:,.0f} req/s, no-op "
             f"{rates['noop']:,.0f} req/s: {cost:.0f} µs of CPU per request")
    return cost


def context(rows: list[Row]) -> list[dict[str, Any]]:
    """Readings that are not targets but say what the targets mean on this machine."""
    noop1 = find(rows, "-", "noop", "/predict", 1)
    items = [{"reading": "no-op c1 p50 (the HTTP round trip alone)",
              "value": round(noop1.p50_us, 1), "unit": "µs"}]
    control = find(rows, "-", "noop+cpu", "/predict", 64)
    items += [{"reading": "c64 control (no-op + modelport's CPU per request): req/s",
               "value": round(control.rps), "unit": "req/s"},
              {"reading": "c64 control (no-op + modelport's CPU per request): p50",
               "value": round(control.p50_us / 1e3, 2), "unit": "ms"},
              {"reading": "c64 control (no-op + modelport's CPU per request): p99",
               "value": round(control.p99_us / 1e3, 2), "unit": "ms"}]
    for model in ("iris", "forest"):
        floor = find(rows, model, "floor-numpy", "in-process", 1)
        hand1 = find(rows, model, "starlette", "/predict", 1)
        items.append({"reading": f"{model} c1 hand-written Starlette p50 - in-process predict",
                      "value": round(hand1.p50_us - floor.p50_us, 1), "unit": "µs"})
        lean = [r for r in rows if r.model == model and r.system == "floor-lean"
                and r.concurrency == 1]
        for proto in ("oip-json", "/predict"):
            mp = find(rows, model, "modelport", proto, 1)
            items.append({"reading": f"{model} c1 modelport {proto} p50 - no-op p50 - "
                                     "in-process predict",
                          "value": round(mp.p50_us - noop1.p50_us - floor.p50_us, 1),
                          "unit": "µs"})
            # The server's own predict is the lean one when it applies; the floor above
            # is scikit-learn's predict. Both readings, so neither flatters.
            items.append({"reading": f"{model} c1 modelport {proto} p50 - no-op p50",
                          "value": round(mp.p50_us - noop1.p50_us, 1), "unit": "µs"})
            if lean:
                items.append({"reading": f"{model} c1 modelport {proto} p50 - no-op p50 - "
                                         "in-process lean predict",
                              "value": round(mp.p50_us - noop1.p50_us - lean[0].p50_us, 1),
                              "unit": "µs"})
        hand = find(rows, model, "starlette", "/predict", 64)
        for proto in ("oip-json", "/predict"):
            mp = find(rows, model, "modelport", proto, 64)
            items.append({"reading": f"{model} c64 modelport {proto} / hand-written Starlette",
                          "value": round(mp.rps / hand.rps, 3), "unit": "x"})
    return items


# -- profiling ---------------------------------------------------------------------------------


def profile_iris(model: BenchModel, config: Path, env: dict[str, str], workdir: Path,
                 seconds: int) -> dict[str, Any]:
    """cProfile (event-loop thread CPU) of modelport's iris app at c=64, per protocol."""
    stats_path = workdir / "modelport.pstats"
    server = Server("modelport iris app under cProfile",
                    [sys.executable, str(APPS / "modelport_profiled.py"), str(config), "{port}",
                     str(stats_path)], env, workdir / "profiled.log", "/v2/health/ready")
    lua = workdir / "profile.lua"
    result: dict[str, Any] = {}
    with running(server):
        for proto, path, body in (("oip-json", f"/v2/models/{model.name}/infer",
                                   model.oip_body()),
                                  ("/predict", "/predict", model.predict_body())):
            write_lua(lua, body)
            run_wrk(server.url + path, lua, 64, WARMUP_SECONDS)
            httpx.post(server.url + "/__profile/start", timeout=10).raise_for_status()
            load = run_wrk(server.url + path, lua, 64, seconds)
            window = httpx.post(server.url + "/__profile/stop", timeout=60).json()
            result[proto] = summarize_profile(stats_path, load, window)
            progress(f"  profiled iris {proto}: {load['rps']:,.0f} req/s under cProfile")
    return result


def summarize_profile(path: Path, load: dict[str, Any], window: dict[str, float]
                      ) -> dict[str, Any]:
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    requests = max(1, load["requests"])
    attributed = sum(v[2] for v in stats.values())

    def name(key: tuple[str, int, str]) -> str:
        file, line, func = key
        if file == "~":
            return func
        parts = Path(file).parts
        short = "/".join(parts[-2:]) if parts[-2:-1] != ("site-packages",) else parts[-1]
        return f"{func} ({short}:{line})"

    def top(index: int, n: int) -> list[dict[str, Any]]:
        ranked = sorted(stats.items(), key=lambda kv: kv[1][index], reverse=True)[:n]
        return [{"frame": name(k), "calls": v[1], "us_per_request": round(v[index] * 1e6
                                                                          / requests, 2),
                 "share": round(v[index] / window["thread_cpu_s"], 4)} for k, v in ranked]

    return {
        "load": load,
        "thread_cpu_s": window["thread_cpu_s"],
        "wall_s": window["wall_s"],
        "loop_thread_cpu_us_per_request": window["thread_cpu_s"] * 1e6 / requests,
        "attributed_to_python_s": attributed,
        "gc": window.get("gc"),
        "gc_threshold": window.get("gc_threshold"),
        "gc_objects": window.get("gc_objects"),
        "self": top(2, 25),
        "cumulative": top(3, 40),
    }


# -- output ------------------------------------------------------------------------------------


def print_rows(rows: list[Row], rounds: int) -> None:
    table = Table(title=f"Serving: one row per request; servers on CPU {SERVER_CPU}, wrk on "
                        f"CPU {LOAD_CPU}; median of {rounds} round(s)")
    for col in ("model", "system", "protocol", "c", "req/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(col, justify="left" if col in ("model", "system", "protocol")
                         else "right")
    for r in rows:
        table.add_row(r.model, r.system, r.protocol, str(r.concurrency), f"{r.rps:,.0f}",
                      f"{r.p50_us / 1e3:.3f}", f"{r.p99_us / 1e3:.3f}", str(r.errors))
    out.print(table)


def print_targets(checks: list[dict[str, Any]]) -> None:
    table = Table(title="Targets (ratios within this run)")
    for col in ("target", "measured", "limit", "", "detail"):
        table.add_column(col)
    for t in checks:
        table.add_row(t["target"], f"{t['value']:,} {t['unit']}", f"{t['op']} {t['limit']}",
                      "[green]MET[/]" if t["met"] else "[red]MISSED[/]", t["detail"])
    out.print(table)


def print_context(items: list[dict[str, Any]]) -> None:
    table = Table(title="Context (not targets)")
    table.add_column("reading")
    table.add_column("value", justify="right")
    for item in items:
        table.add_row(item["reading"], f"{item['value']:,} {item['unit']}")
    out.print(table)


def print_profiles(profiles: dict[str, Any]) -> None:
    for proto, prof in profiles.items():
        table = Table(title=f"cProfile, modelport iris {proto} c=64, event-loop thread: "
                            f"{prof['loop_thread_cpu_us_per_request']:.0f} µs CPU/request "
                            f"under the profiler")
        table.add_column("µs/req (self)", justify="right")
        table.add_column("calls", justify="right")
        table.add_column("frame")
        for item in prof["self"][:15]:
            table.add_row(f"{item['us_per_request']:.1f}", f"{item['calls']:,}", item["frame"])
        out.print(table)
        gcs = ", ".join(f"gen{g}: {v['count']} x, {v['total_ms']:.0f} ms (max {v['max_ms']:.0f})"
                        for g, v in sorted((prof.get("gc") or {}).items()))
        out.print(f"  GC pauses in the window: {gcs or 'none'}; {prof.get('gc_objects')} "
                  "tracked objects", highlight=False)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "modelport": modelport.__version__}
    for dist in ("scikit-learn", "numpy", "starlette", "uvicorn", "uvloop", "httptools",
                 "flask", "gunicorn", "orjson"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    lines = (wrk.stdout or wrk.stderr).splitlines()
    found["wrk"] = lines[0] if lines else "?"
    return found


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--quick", action="store_true", help="1 s x 1 round (smoke run)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile modelport's iris server at c=64 afterwards")
    parser.add_argument("--output", type=Path, default=None,
                        help="default benchmarks/results/serving.json (--quick: "
                             "serving-quick.json beside it)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds = 1, 1
    args.duration, args.rounds = max(1, args.duration), max(1, args.rounds)
    if args.output is None:
        args.output = RESULTS.with_name("serving-quick.json") if args.quick else RESULTS
    require_tools()

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    workdir = Path(tempfile.mkdtemp(prefix="modelport-bench-serving-"))
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    started = datetime.now(UTC)
    t0 = time.monotonic()
    load_before = uptime()
    home = workdir / "home"
    for key in NOISY_ENV:
        os.environ.pop(key, None)
    os.environ["MODELPORT_HOME"] = str(home)
    os.environ.setdefault("MODELPORT_USER", "bench")
    env = dict(os.environ)
    python = sys.executable

    progress("fitting and registering the models")
    models = build_models(workdir)
    register(models, home)
    predict_gets = {m.name: what_predict_gets(home, m.name) for m in models}

    uvicorn_flags = ["--host", "127.0.0.1", "--port", "{port}", "--loop", "uvloop",
                     "--http", "httptools", "--workers", "1", "--log-level", "warning",
                     "--no-access-log"]
    iris = models[0]
    cases: list[Case] = []
    configs: dict[str, Path] = {}
    with contextlib.ExitStack() as stack:
        def start(server: Server) -> Server:
            return stack.enter_context(running(server))

        noop = start(Server("no-op Starlette on uvicorn",
                            [python, "-m", "uvicorn", "noop_app:app", "--app-dir", str(APPS),
                             *uvicorn_flags], env, workdir / "noop.log", "/predict",
                            iris.predict_body()))
        cases.append(Case("-", "noop", "/predict", noop, "/predict", iris.predict_body(), None))
        for m in models:
            app_env = {**env, "MODEL_PATH": str(m.joblib_path)}
            hand = start(Server(f"hand-written Starlette /predict ({m.name})",
                                [python, "-m", "uvicorn", "starlette_app:app", "--app-dir",
                                 str(APPS), *uvicorn_flags], app_env,
                                workdir / f"starlette-{m.name}.log", "/predict",
                                m.predict_body()))
            flask = start(Server(f"Flask /predict under gunicorn ({m.name})",
                                 [python, "-m", "gunicorn", "-w", "1", "--threads", "1",
                                  "--chdir", str(APPS), "-b", "127.0.0.1:{port}",
                                  "--log-level", "warning", "flask_app:app"], app_env,
                                 workdir / f"flask-{m.name}.log", "/predict",
                                 m.predict_body()))
            configs[m.name] = config = workdir / f"serve-{m.name}.yaml"
            config.write_text(yaml.safe_dump({"models": [{"uri": f"models:/{m.name}@champion",
                                                          "batching": BATCHING}]}))
            mp = start(Server(f"modelport serve ({m.name})",
                              [python, "-m", "modelport", "serve", "--config", str(config),
                               "--host", "127.0.0.1", "--port", "{port}", "--log-level",
                               "warning"], env, workdir / f"modelport-{m.name}.log",
                              "/v2/health/ready"))
            expected = m.expected()
            cases += [
                Case(m.name, "starlette", "/predict", hand, "/predict", m.predict_body(),
                     expected),
                Case(m.name, "flask", "/predict", flask, "/predict", m.predict_body(), expected),
                Case(m.name, "modelport", "oip-json", mp, f"/v2/models/{m.name}/infer",
                     m.oip_body(), expected),
                Case(m.name, "modelport", "/predict", mp, "/predict", m.predict_body(),
                     expected),
            ]
        for i, case in enumerate(cases):
            case.check()
            case.lua = write_lua(workdir / f"case-{i}.lua", case.body)
        cost_us = calibrate(cases[0], next(c for c in cases if c.key == (
            iris.name, "modelport", "oip-json")), args.duration)
        busy = start(Server(f"no-op + {cost_us:.0f} µs of CPU per request",
                            [python, "-m", "uvicorn", "busy_app:app", "--app-dir", str(APPS),
                             *uvicorn_flags], {**env, "BUSY_US": f"{cost_us:.1f}"},
                            workdir / "busy.log", "/predict", iris.predict_body()))
        cases.insert(1, Case("-", "noop+cpu", "/predict", busy, "/predict",
                             iris.predict_body(), None))
        cases[1].lua = cases[0].lua

        floors: list[tuple[tuple[str, str, str], Callable[[], Any]]] = []
        for m in models:
            x = np.asarray([m.row], dtype=np.float64)
            floors.append(((m.name, "floor-numpy", "in-process"),
                           lambda m=m, x=x: m.model.predict(x)))
            lean = lean_floor(m.model)
            if lean is not None:  # what modelport's server calls for this model
                floors.append(((m.name, "floor-lean", "in-process"), lambda f=lean, x=x: f(x)))
            if m.frame_row is not None:
                floors.append(((m.name, "floor-df", "in-process"),
                               lambda m=m, x=m.frame_row: m.model.predict(x)))

        raw: dict[tuple[tuple[str, str, str], int], list[dict[str, Any]]] = {}
        floor_seconds = min(float(args.duration), 3.0)
        for c in CONCURRENCY:
            for rnd in range(args.rounds):
                progress(f"c={c} round {rnd + 1}/{args.rounds}")
                if c == 1:
                    for key, fn in floors:
                        r = time_floor(fn, floor_seconds)
                        raw.setdefault((key, 1), []).append(r)
                        progress(f"  {key[0]:6} {key[1]:11} p50 {r['p50_us']:8.1f} µs  "
                                 f"p99 {r['p99_us']:8.1f} µs")
                shift = rnd % len(cases)
                for case in cases[shift:] + cases[:shift]:
                    assert case.lua is not None
                    url = case.server.url + case.path
                    run_wrk(url, case.lua, c, WARMUP_SECONDS)
                    r = run_wrk(url, case.lua, c, args.duration)
                    case.server.settle()
                    raw.setdefault((case.key, c), []).append(r)
                    progress(f"  {case.model:6} {case.system:10} {case.protocol:9} "
                             f"{r['rps']:>9,.0f} req/s  p50 {r['p50_us'] / 1e3:7.2f} ms  "
                             f"p99 {r['p99_us'] / 1e3:7.2f} ms  errors {r['errors']}")

    rows: list[Row] = []
    for key, _ in floors:
        for c in CONCURRENCY:
            rows.append(aggregate(key, c, raw[(key, 1)],
                                  note="" if c == 1 else "single-threaded: the c=1 numbers"))
    for case in cases:
        for c in CONCURRENCY:
            rows.append(aggregate(case.key, c, raw[(case.key, c)]))
    checks = targets(rows)
    readings = context(rows)
    load_after = uptime()

    profiles: dict[str, Any] = {}
    if args.profile:
        progress("profiling modelport's iris app at c=64 (cProfile, event-loop thread)")
        profiles = profile_iris(iris, configs["iris"], env, workdir, args.duration)

    print_rows(rows, args.rounds)
    print_targets(checks)
    print_context(readings)
    out.print(f"load: before {load_before}\n      after  {load_after}", highlight=False)
    print_profiles(profiles)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "serving",
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - t0, 1),
        "quick": args.quick,
        "seconds_per_measurement": args.duration,
        "rounds": args.rounds,
        "warmup_seconds": WARMUP_SECONDS,
        "wrk_timeout": WRK_TIMEOUT,
        "concurrency": list(CONCURRENCY),
        "batching": BATCHING,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_before": load_before, "load_after": load_after,
                    "server_cpu": SERVER_CPU, "load_cpu": LOAD_CPU},
        "versions": versions(),
        "predict_gets": predict_gets,
        "rows": [asdict(r) for r in rows],
        "targets": checks,
        "all_targets_met": all(t["met"] for t in checks),
        "context": readings,
        "profiles": profiles,
    }, indent=2) + "\n")
    progress(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        # escape: "pip install -e '.[bench]'" is not rich markup
        err.print(f"[red]error:[/] {rich.markup.escape(str(exc))}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)
