"""modelport's own per-request cost, in process: the real app driven as ASGI, no sockets.

``benchmarks/serving.py`` measures whole servers with wrk, where uvicorn, httptools and
uvloop cost about as much as a no-op app's whole request and the machine's noise moves
figures by 15-30%. This script measures only what runs inside the ASGI callable: it
builds the app the way ``modelport serve`` does (``ModelRepository`` + ``create_app``,
as ``serving/server.py`` ``build_app``, with an iris ``LogisticRegression`` registered
in a temp ``MODELPORT_HOME``), starts it through the ASGI lifespan protocol, and calls
it in a loop with a fake scope, ``receive`` and ``send``: one-row OIP JSON
(``/v2/models/iris/infer``) and ``/predict`` requests, sequentially (c=1) and from 64
concurrent tasks (c=64, which the batcher merges as it does under wrk).

The cost is the **event-loop thread's CPU time per request** (``time.thread_time_ns``
over a chunk of ``--requests``; the median chunk, the lower quartile beside it): CPU
time, not wall time, because other jobs on this shared machine preempt the process,
and short interleaved chunks so a busy spell hits every variant alike. The prediction
log's writer thread is measured apart, its CPU time over the whole run per row it wrote
(it writes a file per 10,000 rows or 5 s, as on a server), and added to the total: on a
server pinned to one core it takes that CPU from the loop. The process runs on one CPU
(``--cpu``, default 0) under uvloop, as the server does.

Variants, each switching off one more part (all side by side in one process, measured
interleaved in rotated order, median over ``--rounds``):

- ``full``: what ``modelport serve`` runs by default (prediction log sampling 100%);
- ``sample0``: the prediction log sampling 0% (its offer still runs, and counts);
- ``nolog``: monitoring disabled (no prediction log);
- ``nometrics``: and the per-request Prometheus metrics are no-ops;
- ``notraffic``: and the per-version traffic counters (``serving/traffic.py``) too;
- ``norouting``: and the repository's routing is bypassed (a request goes straight to
  the stable deployment).

References through the same driver: ``noop-asgi`` (one start and one body message:
the driver's own cost, subtracted to give "modelport µs") and ``noop-starlette``
(``apps/noop_app.py``, the app the wrk benchmark's ceiling runs). The gauges' periodic
drift and realized-metric computation is set to once an hour here: it is not a
per-request cost, and would land at random in one measurement.

Run ``python benchmarks/request_path.py`` (``--requests N`` per measurement, ``--rounds
R``, ``--profile`` to also cProfile the ``full`` variant at c=64). It prints a table and
writes ``benchmarks/results/request_path.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "request_path.json"
BATCHING = {"max_batch_size": 64, "max_latency_ms": 5.0}
CONCURRENCY = (1, 64)
out = Console(soft_wrap=False, width=160)

App = Callable[[Any, Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class Variant:
    """One app configuration; each switch turns one part of the request path off."""

    name: str
    off: str  # what this variant switches off beyond the previous one
    log: bool = True
    sample_rate: float = 1.0
    metrics: bool = True
    traffic: bool = True
    routing: bool = True


VARIANTS = (
    Variant("full", "-"),
    Variant("sample0", "prediction log sampling 1 -> 0", sample_rate=0.0),
    Variant("nolog", "prediction log (monitoring off)", log=False),
    Variant("nometrics", "Prometheus metrics", log=False, metrics=False),
    Variant("notraffic", "traffic counters", log=False, metrics=False, traffic=False),
    Variant("norouting", "repository routing", log=False, metrics=False, traffic=False,
            routing=False),
)


# -- the model and the apps -------------------------------------------------------------


def register_iris(home: Path) -> tuple[list[float], list[Any]]:
    """Fit and register iris (DataFrame example, as serving.py does); the row and answer."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelport.client import Registry
    from modelport.config import Settings

    iris = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
    registry = Registry(settings=Settings.load(home))
    version = registry.log_model(model, "iris", input_example=iris.data.head(5))
    registry.set_alias("iris", "champion", version.version)
    row = [float(v) for v in iris.data.iloc[0]]
    return row, np.asarray(model.predict(iris.data.head(1))).tolist()


class _Null:
    """A metric child, traffic counter or anything else: its attributes are itself and
    calling it does nothing, so ``NULL.latency.observe(x)`` is a no-op."""

    def __getattr__(self, _: str) -> _Null:
        return self

    def __call__(self, *_: Any, **__: Any) -> None:
        return None


NULL = _Null()


def null_metrics() -> Any:
    """``ServerMetrics`` whose per-request recording does nothing (scrapes still work)."""
    from modelport.serving.metrics import ServerMetrics

    class NullMetrics(ServerMetrics):
        def child(self, metric: Any, *labels: str) -> Any:
            return NULL

    metrics = NullMetrics()
    for name in ("deployment", "inflight_of"):  # the per-request recorders, where they exist
        if callable(getattr(metrics, name, None)):
            setattr(metrics, name, lambda *_: NULL)
    return metrics


@dataclass
class Built:
    """An app under test and what its switches reach."""

    variant: Variant
    app: App
    repository: Any = None
    predictions: Any = None
    lifespan: Any = None
    task: Any = None
    sent: Any = None


def build(variant: Variant, home: Path, root: Path) -> Built:
    """The app of ``variant``, built as ``build_app`` builds ``modelport serve``'s."""
    from modelport.client import Registry
    from modelport.config import Settings
    from modelport.monitoring.labels import LabelLog
    from modelport.monitoring.predlog import PredictionLog
    from modelport.serving.app import Limits, create_app
    from modelport.serving.deployment import BatchingConfig
    from modelport.serving.metrics import ServerMetrics
    from modelport.serving.monitor import Monitoring, worker_id
    from modelport.serving.repository import Endpoint, ModelRepository
    from modelport.serving.traffic import new_server_id

    registry = Registry(settings=Settings.load(home))
    server_id = new_server_id()
    monitoring = None
    if variant.log:
        where = root / variant.name
        worker = worker_id(server_id)
        monitoring = Monitoring(
            PredictionLog(where, worker_id=worker, sample_rate=variant.sample_rate),
            LabelLog(where, worker_id=f"feedback_{worker}"), interval=3600.0,
            retention_days=7)
    metrics = ServerMetrics() if variant.metrics else null_metrics()
    endpoint = Endpoint.from_uri("models:/iris@champion",
                                 batching=BatchingConfig(**BATCHING))  # type: ignore[arg-type]
    repository = ModelRepository(registry, [endpoint], metrics, poll_interval=1.0,
                                 deployment_poll_interval=0.2, server_id=server_id,
                                 monitoring=monitoring)
    app = create_app(repository, limits=Limits())
    return Built(variant, app, repository,
                 monitoring.predictions if monitoring is not None else None)


def switch_off(built: Built) -> None:
    """Apply the variant's traffic and routing switches (once its model is loaded)."""
    repo, v = built.repository, built.variant
    if not v.traffic:
        for served in repo.models.values():
            served.traffic.version = lambda _v: NULL
    if not v.routing:
        models = repo.models

        async def straight(request: Any) -> Any:
            return await models[request.model].route.stable.infer(request)

        repo.infer = straight


async def start(built: Built) -> None:
    """Run the app's lifespan startup, wait for its model, apply the switches."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    built.sent = asyncio.Queue()
    inbox.put_nowait({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    built.lifespan = inbox
    built.task = asyncio.create_task(built.app(scope, inbox.get, built.sent.put))
    message = await built.sent.get()
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"{built.variant.name}: startup failed: {message}")
    if built.repository is not None:
        if not await built.repository.wait_ready(120):
            raise RuntimeError(f"{built.variant.name}: the model did not load")
        switch_off(built)


async def stop(built: Built) -> None:
    if built.task is None:
        return
    built.lifespan.put_nowait({"type": "lifespan.shutdown"})
    await built.sent.get()
    await built.task


async def noop_asgi(scope: Any, receive: Any, send: Any) -> None:
    """The driver's own cost: answer a fixed body with one start and one body message."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"predictions":[0]}'})


def noop_starlette() -> App:
    sys.path.insert(0, str(HERE / "apps"))
    from noop_app import app  # type: ignore[import-not-found]

    return app  # type: ignore[no-any-return]


# -- the driver ---------------------------------------------------------------------------


@dataclass
class Request:
    """One request kind: its path, body and the predictions it must get back."""

    protocol: str
    path: str
    body: bytes
    expected: Any = None
    scope: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "POST", "scheme": "http", "path": self.path,
            "raw_path": self.path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8080"),
                        (b"content-length", str(len(self.body)).encode()),
                        (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080),
        }


async def drive(app: App, req: Request, n: int, concurrency: int) -> tuple[int, bytes]:
    """Send ``n`` requests from ``concurrency`` tasks; (non-200 answers, a last body)."""
    message = {"type": "http.request", "body": req.body, "more_body": False}
    errors = 0
    last = [b""]

    async def receive() -> dict[str, Any]:
        return message

    async def send(msg: dict[str, Any]) -> None:
        nonlocal errors
        if msg["type"] == "http.response.start":
            if msg["status"] != 200:
                errors += 1
        else:
            last[0] = msg.get("body", b"")

    scope = req.scope

    async def worker(count: int) -> None:
        for _ in range(count):
            await app(dict(scope), receive, send)

    if concurrency == 1:
        await worker(n)
    else:
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return errors, last[0]


def check(name: str, req: Request, body: bytes) -> None:
    """The answer holds the in-process model's prediction."""
    if req.expected is None:
        return
    doc = orjson.loads(body)
    got = doc["predictions"] if "predictions" in doc else doc["outputs"][0]["data"]
    if list(got) != list(req.expected):
        raise RuntimeError(f"{name} {req.protocol}: answered {body[:200]!r}, "
                           f"expected {req.expected}")


def _batcher(built: Built) -> Any:
    if built.repository is None:
        return None
    return built.repository.models["iris"].route.stable.batcher


async def measure(built: Built, req: Request, n: int, concurrency: int) -> dict[str, Any]:
    """``timed``, repeated (up to 3 times) while the model got pinned to the executor.

    A cheap model runs on the event loop; an inline run that held the loop 5x over its
    budget pins it to the executor thread for good (a model waiting on I/O). On a busy
    machine a preemption can do that to iris, which then pays a thread hop per batch:
    the pin is undone before each measurement, and one that happened during it is
    measured again, so every figure is of the path the server means to run.
    """
    batcher = _batcher(built)
    for attempt in range(3):
        if batcher is not None:
            batcher._pinned = False
        got = await timed(built, req, n, concurrency)
        got["pinned"] = bool(batcher is not None and batcher._pinned)
        got["attempts"] = attempt + 1
        if not got["pinned"]:
            break
    return got


async def timed(built: Built, req: Request, n: int, concurrency: int) -> dict[str, Any]:
    """One measurement: a short warm-up, then ``n`` requests, on the loop thread's clock."""
    await drive(built.app, req, 64, concurrency)
    cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
    errors, last = await drive(built.app, req, n, concurrency)
    cpu, wall = time.thread_time_ns() - cpu, time.perf_counter_ns() - wall
    done = (n // concurrency) * concurrency
    check(built.variant.name, req, last)
    return {"cpu_us": cpu / 1e3 / done, "wall_us": wall / 1e3 / done, "errors": errors,
            "requests": done}


def writer_cpu(built: Built) -> tuple[float, int]:
    """(CPU seconds of the prediction log's writer thread, rows it wrote) so far."""
    log = built.predictions
    if log is None:
        return 0.0, 0
    thread = log._writer._thread
    cpu = 0.0 if thread is None or thread.ident is None else \
        time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return cpu, sum(s["written"] for s in log.stats().values())


# -- the run ------------------------------------------------------------------------------


Samples = dict[tuple[str, str, int], list[dict[str, Any]]]


class Bench:
    """Every variant's app in one process, measured round by round."""

    def __init__(self, args: argparse.Namespace, home: Path, root: Path, row: list[float],
                 expected: list[Any]) -> None:
        self.args = args
        oip = orjson.dumps({"inputs": [{"name": "input-0", "shape": [1, len(row)],
                                        "datatype": "FP64", "data": row}]})
        self.requests = [Request("oip-json", "/v2/models/iris/infer", oip, expected),
                         Request("/predict", "/predict", orjson.dumps({"features": [row]}),
                                 expected)]
        self.builts = [build(v, home, root) for v in VARIANTS if v.name in args.variants]
        refs = [Built(Variant("noop-asgi", "reference"), noop_asgi),
                Built(Variant("noop-starlette", "reference"), noop_starlette())]
        noop_req = Request("-", "/predict", orjson.dumps({"features": [row]}))
        self.cases = [(b, r) for b in self.builts for r in self.requests] + [
            (b, noop_req) for b in refs]
        self.writers: dict[str, tuple[float, int]] = {}

    async def start(self) -> None:
        for b in self.builts:
            await start(b)
        self.writers = {b.variant.name: writer_cpu(b) for b in self.builts}

    async def round(self, rnd: int) -> Samples:
        """Every case once per concurrency, in an order rotated by ``rnd``."""
        samples: Samples = {}
        shift = (rnd * 5) % len(self.cases)
        for c in CONCURRENCY:
            for b, req in self.cases[shift:] + self.cases[:shift]:
                got = await measure(b, req, self.args.requests, c)
                samples.setdefault((b.variant.name, req.protocol, c), []).append(got)
        return samples

    async def finish(self) -> dict[str, tuple[float, int]]:
        """The writer threads' CPU µs per row written since ``start``."""
        found = {}
        for b in self.builts:
            if b.predictions is not None:
                await asyncio.to_thread(b.predictions.flush, 60)
            cpu, rows = writer_cpu(b)
            cpu0, rows0 = self.writers[b.variant.name]
            found[b.variant.name] = ((cpu - cpu0) * 1e6 / (rows - rows0), rows - rows0) \
                if rows > rows0 else (0.0, 0)
        return found

    async def stop(self) -> None:
        for b in self.builts:
            await stop(b)


def merge(into: Samples, more: Samples) -> None:
    for key, runs in more.items():
        into.setdefault(key, []).extend(runs)


async def run_here(bench: Bench) -> dict[str, Any]:
    """All rounds in this process (the default mode)."""
    args = bench.args
    samples: Samples = {}
    await bench.start()
    try:
        for rnd in range(args.rounds):
            merge(samples, await bench.round(rnd))
            if (rnd + 1) % 5 == 0 or rnd + 1 == args.rounds:
                out.print(f"round {rnd + 1}/{args.rounds} done", highlight=False)
        writers = await bench.finish()
        profiles = await profile(bench.builts[0], bench.requests, args) \
            if args.profile and bench.builts else {}
    finally:
        await bench.stop()
    return {"samples": samples, "writers": writers, "profiles": profiles}


async def run_worker(bench: Bench) -> dict[str, Any]:
    """``--worker``: one round per line read ("round N"), its samples as one JSON line;
    "finish" answers the writers' figures and ends (driven by ``--against``)."""
    await bench.start()
    print("ready", flush=True)
    try:
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).split()
            if not line or line[0] == "finish":
                print(json.dumps({"writers": await bench.finish()}), flush=True)
                return {}
            got = await bench.round(int(line[1]))
            print(json.dumps({"|".join(map(str, k)): v for k, v in got.items()}), flush=True)
    finally:
        await bench.stop()


async def profile(built: Built, requests: list[Request], args: argparse.Namespace
                  ) -> dict[str, Any]:
    """cProfile of ``built`` at c=64 per protocol: the top frames by self time."""
    found = {}
    for req in requests:
        await drive(built.app, req, 2048, 64)
        prof = cProfile.Profile()
        n = args.requests
        prof.enable()
        await drive(built.app, req, n, 64)
        if built.predictions is not None:
            built.predictions.flush(60)
        prof.disable()
        stats = pstats.Stats(prof)
        rows = []
        for (file, line, func), (_cc, calls, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
            rows.append({"frame": f"{Path(file).name}:{line}({func})", "calls": calls,
                         "self_us": tt * 1e6 / n, "cum_us": ct * 1e6 / n})
        rows.sort(key=lambda r: -r["self_us"])
        found[req.protocol] = rows[:40]
    return found


def summarize(samples: dict[tuple[str, str, int], list[dict[str, Any]]],
              writers: dict[str, tuple[float, int]]) -> list[dict[str, Any]]:
    """One row per (variant, protocol, c): the loop's median and lower quartile, the
    writer thread's share, modelport's part, what each switch saved, ratios."""
    med = {}
    for key, runs in samples.items():
        cpu = sorted(s["cpu_us"] for s in runs)
        med[key] = {"loop_us": statistics.median(cpu), "q25_us": cpu[len(cpu) // 4],
                    "wall_us": statistics.median(s["wall_us"] for s in runs),
                    "writer_us": writers.get(key[0], (0.0, 0))[0],
                    "errors": sum(s["errors"] for s in runs),
                    "repeats": sum(s.get("attempts", 1) - 1 for s in runs),
                    "runs": [round(c, 2) for c in cpu]}
        med[key]["total_us"] = med[key]["loop_us"] + med[key]["writer_us"]
    rows = []
    for c in CONCURRENCY:
        base = med[("noop-asgi", "-", c)]["total_us"]
        for proto in ("oip-json", "/predict"):
            full = med.get(("full", proto, c), {}).get("total_us")
            prev = None
            for v in VARIANTS:
                m = med.get((v.name, proto, c))
                if m is None:  # not measured (--variants)
                    continue
                rows.append({"variant": v.name, "off": v.off, "protocol": proto, "c": c,
                             **m, "modelport_us": m["total_us"] - base,
                             "delta_us": None if prev is None else prev - m["total_us"],
                             "vs_full": m["total_us"] / full if full else None})
                prev = m["total_us"]
        for ref in ("noop-asgi", "noop-starlette"):
            m = med[(ref, "-", c)]
            rows.append({"variant": ref, "off": "reference", "protocol": "-", "c": c, **m,
                         "modelport_us": m["total_us"] - base, "delta_us": None,
                         "vs_full": None})
    return rows


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = Table(title=f"modelport's request path in process: CPU µs per one-row iris "
                        f"request (median of {args.rounds} rounds x {args.requests:,})")
    cols = ("variant", "switched off", "protocol", "c", "loop µs", "q25", "writer µs",
            "total µs", "modelport µs", "saved by switch", "x full", "wall µs", "errors")
    for col in cols:
        table.add_column(col, justify="left" if col in cols[:3] else "right")
    for r in rows:
        table.add_row(r["variant"], r["off"], r["protocol"], str(r["c"]), f"{r['loop_us']:.1f}",
                      f"{r['q25_us']:.1f}", f"{r['writer_us']:.1f}", f"{r['total_us']:.1f}",
                      f"{r['modelport_us']:.1f}",
                      "" if r["delta_us"] is None else f"{r['delta_us']:+.1f}",
                      "" if r["vs_full"] is None else f"{r['vs_full']:.2f}",
                      f"{r['wall_us']:.1f}", str(r["errors"]))
    out.print(table)


def run_against(args: argparse.Namespace) -> dict[str, Any]:
    """``--against SRC``: SRC's modelport and this one in two processes on one CPU.

    Each process builds its apps, then they take turns, a round at a time (the first
    to go alternates), so a busy spell on the machine hits both about equally; a key's
    paired change is the median over rounds of this/base for the same round.
    """
    here = os.environ.get("PYTHONPATH", "")
    flags = ["--worker", "--requests", str(args.requests), "--cpu", str(args.cpu),
             "--variants", ",".join(sorted(args.variants))]
    procs = {label: subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *flags], text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path})
        for label, path in (("base", str(Path(args.against).resolve())), ("this", here))}
    samples: dict[str, Samples] = {"base": {}, "this": {}}
    writers: dict[str, dict[str, tuple[float, int]]] = {}
    try:
        for label, proc in procs.items():
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the {label} worker did not start")

        def ask(label: str, line: str) -> dict[str, Any]:
            proc = procs[label]
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())  # type: ignore[no-any-return]

        for rnd in range(args.rounds):
            for label in ("base", "this") if rnd % 2 == 0 else ("this", "base"):
                got = ask(label, f"round {rnd}")
                merge(samples[label], {(k.split("|")[0], k.split("|")[1], int(k.split("|")[2])):
                                       v for k, v in got.items()})
            if (rnd + 1) % 5 == 0 or rnd + 1 == args.rounds:
                out.print(f"round {rnd + 1}/{args.rounds} done", highlight=False)
        for label in procs:
            writers[label] = {k: tuple(v) for k, v in ask(label, "finish")["writers"].items()}
    finally:
        for proc in procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(60)
    rows = {label: summarize(samples[label], writers[label]) for label in procs}
    paired = {}
    for key, runs in samples["this"].items():
        base = samples["base"].get(key, [])
        ratios = [t["cpu_us"] / b["cpu_us"] for t, b in zip(runs, base, strict=False)]
        paired["|".join(map(str, key))] = statistics.median(ratios) if ratios else None
    return {"rows": rows, "paired": paired}


def print_comparison(found: dict[str, Any], args: argparse.Namespace) -> None:
    table = Table(title=f"This checkout against {args.against}: total CPU µs per request "
                        f"(median of {args.rounds} alternating rounds x {args.requests:,})")
    cols = ("variant", "protocol", "c", "base µs", "this µs", "saved µs", "paired loop change")
    for col in cols:
        table.add_column(col, justify="left" if col in cols[:2] else "right")
    base = {(r["variant"], r["protocol"], r["c"]): r for r in found["rows"]["base"]}
    for r in found["rows"]["this"]:
        b = base[(r["variant"], r["protocol"], r["c"])]
        ratio = found["paired"].get(f"{r['variant']}|{r['protocol']}|{r['c']}")
        table.add_row(r["variant"], r["protocol"], str(r["c"]), f"{b['total_us']:.1f}",
                      f"{r['total_us']:.1f}", f"{b['total_us'] - r['total_us']:+.1f}",
                      "" if ratio is None else f"{(ratio - 1) * 100:+.1f}%")
    out.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=512, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (median)")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to run on (-1: any)")
    parser.add_argument("--profile", action="store_true", help="cProfile 'full' at c=64")
    parser.add_argument("--variants", default=",".join(v.name for v in VARIANTS),
                        help="comma-separated variants to measure (default: all)")
    parser.add_argument("--against", metavar="SRC",
                        help="compare with the modelport package under SRC (a src/ folder)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=None,
                        help="default benchmarks/results/request_path.json "
                             "(request_path-compare.json with --against)")
    args = parser.parse_args(argv)
    args.variants = set(args.variants.split(","))
    unknown = args.variants - {v.name for v in VARIANTS}
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    args.requests = max(64, args.requests)
    output = args.output or (RESULTS.with_name("request_path-compare.json") if args.against
                             else RESULTS)
    load = os.getloadavg()
    meta = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip(),
            "python": platform.python_version(), "load_before": load,
            "requests": args.requests, "rounds": args.rounds}
    if args.against:
        found = run_against(args)
        print_comparison(found, args)
    else:
        found = run_local(args)
        if args.worker:
            return 0
        print_table(found["rows"], args)
        print_profiles(found["profiles"])
    result = {**meta, "load_after": os.getloadavg(), **found}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1))
    out.print(f"load average {load[0]:.2f} before, {result['load_after'][0]:.2f} after; "
              f"wrote {output}", highlight=False)
    return 0


def run_local(args: argparse.Namespace) -> dict[str, Any]:
    """Set up a temp home with iris and run the rounds here (or serve them, --worker)."""
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    import uvloop

    with tempfile.TemporaryDirectory(prefix="modelport-bench-path-") as tmp:
        home = Path(tmp) / "home"
        os.environ["MODELPORT_HOME"] = str(home)
        os.environ.setdefault("MODELPORT_USER", "bench")
        for key in ("MODELPORT_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"):
            os.environ.pop(key, None)
        row, expected = register_iris(home)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            bench = Bench(args, home, Path(tmp) / "monitoring", row, expected)
            found = runner.run(run_worker(bench) if args.worker else run_here(bench))
    if args.worker:
        return {}
    return {"rows": summarize(found["samples"], found["writers"]),
            "profiles": found["profiles"]}


def print_profiles(profiles: dict[str, list[dict[str, Any]]]) -> None:
    for proto, frames in profiles.items():
        table = Table(title=f"cProfile, 'full' {proto} c=64 (µs per request under the profiler)")
        for col in ("self µs", "cum µs", "calls", "frame"):
            table.add_column(col, justify="right" if col != "frame" else "left")
        for f in frames[:25]:
            table.add_row(f"{f['self_us']:.2f}", f"{f['cum_us']:.1f}", f"{f['calls']:,}",
                          f["frame"])
        out.print(table)


if __name__ == "__main__":
    raise SystemExit(main())
