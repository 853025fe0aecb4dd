"""Rollout benchmark (issue 5): how fast a bad candidate is taken out, under load.

Run ``.venv/bin/python benchmarks/rollout.py`` (``--rounds N`` bad candidates, default
5; ``--clients C``, default 64; ``--quick`` for 2 rounds). One run:

1. registers iris v1 (LogisticRegression, the champion), a good v2 (same model family,
   other regularisation) and, per round, a deliberately bad candidate that answers
   class 0 for every row (a prediction shift the built-in analysis must catch);
2. starts one real ``modelport serve iris@champion`` (its embedded controller on), pinned
   to CPU 0, and a load loop of ``C`` concurrent clients (asyncio + httpx) on CPU 1,
   each sending one row at a time to ``POST /predict`` and recording when it sent,
   when it got the answer, the status and ``X-Model-Version``;
3. walks the good v2 through a canary (``10,50,100``, 2 s a step) to promoted, then, each
   round, starts a canary of a bad candidate (``10,50,100``, 30 s a step) and waits for
   the controller to roll it back.

It reports, per round: the time from the failing analysis (the ``rolled_back`` event's
timestamp, written by the controller in the transaction that takes the candidate out)
to 100% of traffic on stable (the last answer the bad version gave; target <= 1 s), how
long the candidate had answered before the verdict, the share of the rollout's traffic it
saw, and, over the whole run, requests that failed (non-200 or transport errors:
target 0 — the bad candidate answers 200, so every failure would be a switch's fault).
Results go to ``benchmarks/results/rollout.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import modelport

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "rollout.json"
SERVER_CPU, LOAD_CPU = 0, 1
ROLLBACK_TARGET_S = 1.0
out = Console(soft_wrap=False, width=140)
err = Console(stderr=True)


def progress(message: str) -> None:
    err.print(f"[dim]{datetime.now():%H:%M:%S}[/] {message}", highlight=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Answer:
    sent: float  # time.time()
    done: float
    status: int  # 0 = transport error
    version: str


class LoadLoop:
    """``clients`` concurrent clients on their own thread and event loop, until stopped."""

    def __init__(self, url: str, rows: np.ndarray, clients: int) -> None:
        self.url = url
        self.bodies = [json.dumps({"features": [r.tolist()]}).encode() for r in rows]
        self.clients = clients
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {LOAD_CPU})
        asyncio.run(self._main())

    async def _main(self) -> None:
        # aiohttp, not httpx: httpx's async pool tops out near 100 req/s with 64
        # concurrent clients on one core, far below what the server answers.
        conn = aiohttp.TCPConnector(limit=self.clients)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
            await asyncio.gather(*(self._client(session, i) for i in range(self.clients)))

    async def _client(self, session: aiohttp.ClientSession, i: int) -> None:
        n = i
        headers = {"content-type": "application/json"}
        while not self._stop.is_set():
            body = self.bodies[n % len(self.bodies)]
            n += self.clients
            sent = time.time()
            try:
                async with session.post(self.url + "/predict", data=body,
                                        headers=headers) as r:
                    await r.read()
                    self.answers.append(Answer(sent, time.time(), r.status,
                                               r.headers.get("x-model-version", "")))
            except (aiohttp.ClientError, TimeoutError):
                self.answers.append(Answer(sent, time.time(), 0, ""))


def cli(home: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "MODELPORT_HOME": str(home), "MODELPORT_USER": "bench"}
    proc = subprocess.run([sys.executable, "-m", "modelport", *args, "--json"], env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"modelport {' '.join(args)} failed: {proc.stderr}")
    return dict(json.loads(proc.stdout)) if proc.stdout.strip().startswith("{") else {}


def wait_final(reg: modelport.Registry, rollout_id: int, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = reg.deployments.rollout(rollout_id)
        if not r.status.active:
            return r
        time.sleep(0.05)
    raise RuntimeError(f"rollout #{rollout_id} still active after {timeout:g}s")


def rollout(home: Path, reg: modelport.Registry, version: int, step_duration: str) -> Any:
    cli(home, "rollout", "start", "iris", "--candidate", f"iris/{version}", "--strategy",
        "canary", "--steps", "10,50,100", "--step-duration", step_duration)
    active = reg.deployments.active_rollout("iris")
    assert active is not None
    return active


def measure_bad(reg: modelport.Registry, load: LoadLoop, rid: int, version: int,
                started: float) -> dict[str, Any]:
    final = wait_final(reg, rid, 120)
    if final.status.value != "rolled_back":
        raise RuntimeError(f"bad candidate ended {final.status.value}: {final.reason}")
    event = next(e for e in reg.deployments.events("iris") if e.rollout_id == rid
                 and e.kind == "rolled_back")
    verdict = event.at.timestamp()
    time.sleep(1.5)  # let answers in flight at the switch come back
    answers = [a for a in list(load.answers) if a.sent >= started]
    bad = [a for a in answers if a.version == str(version)]
    last_bad = max((a.done for a in bad), default=verdict)
    first_bad = min((a.done for a in bad), default=verdict)
    during = [a for a in answers if a.sent <= last_bad]
    after = [a for a in answers if a.sent > verdict + ROLLBACK_TARGET_S]
    return {
        "version": version, "reason": final.reason,
        "to_stable_s": max(0.0, last_bad - verdict),
        "candidate_answered_before_verdict_s": max(0.0, verdict - first_bad),
        "candidate_requests": len(bad), "rollout_requests": len(during),
        "candidate_share": len(bad) / len(during) if during else 0.0,
        "bad_answers_after_1s": sum(1 for a in after if a.version == str(version)),
    }


def run(rounds: int, clients: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="modelport-bench-rollout-"))
    home = work / "home"
    os.environ["MODELPORT_HOME"] = str(home)
    reg = modelport.Registry(home)
    X, y = load_iris(return_X_y=True)
    reg.log_model(LogisticRegression(max_iter=500).fit(X, y), "iris", input_example=X[:5])
    reg.log_model(LogisticRegression(C=0.5, max_iter=500).fit(X, y), "iris",
                  input_example=X[:5])
    reg.set_alias("iris", "champion", 1, reason="bench")
    bad_versions = [reg.log_model(DummyClassifier(strategy="constant", constant=0).fit(X, y),
                                  "iris", input_example=X[:5]).version for _ in range(rounds)]
    port = free_port()
    log = (work / "server.log").open("wb")
    env = {**os.environ, "MODELPORT_HOME": str(home), "MODELPORT_USER": "bench"}
    server = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", "modelport", "serve",
         "iris@champion", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    load = LoadLoop(url, X, clients)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/v2/health/ready", timeout=2).status_code == 200:
                    break
            if server.poll() is not None:
                raise RuntimeError((work / "server.log").read_text()[-3000:])
            time.sleep(0.1)
        progress(f"server ready at {url}; load: {clients} clients")
        load.start()
        time.sleep(3)
        progress("good candidate iris/2: canary 10,50,100 at 2 s a step")
        good = rollout(home, reg, 2, "2s")
        good_final = wait_final(reg, good.id, 120)
        progress(f"iris/2 {good_final.status.value} {good_final.reason}")
        results = []
        for version in bad_versions:
            time.sleep(2)
            started = time.time()
            progress(f"bad candidate iris/{version}: canary 10,50,100 at 30 s a step")
            r = rollout(home, reg, version, "30s")
            results.append(measure_bad(reg, load, r.id, version, started))
            progress(f"iris/{version}: back on stable {results[-1]['to_stable_s']:.3f}s after "
                     f"the verdict ({results[-1]['reason']})")
        time.sleep(1)
    finally:
        load.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()
    answers = load.answers
    failed = [a for a in answers if a.status != 200]
    elapsed = max(a.done for a in answers) - min(a.sent for a in answers)
    summary = {
        "when": datetime.now(UTC).isoformat(), "clients": clients, "rounds": rounds,
        "good_candidate": good_final.status.value, "requests": len(answers),
        "requests_per_s": len(answers) / elapsed, "failed_requests": len(failed),
        "failed_statuses": sorted({a.status for a in failed}),
        "to_stable_s": [r["to_stable_s"] for r in results],
        "to_stable_median_s": statistics.median(r["to_stable_s"] for r in results),
        "to_stable_max_s": max(r["to_stable_s"] for r in results),
        "candidate_share_median": statistics.median(r["candidate_share"] for r in results),
        "rounds_detail": results,
    }
    shutil.rmtree(work, ignore_errors=True)
    return summary


def report(summary: dict[str, Any]) -> None:
    table = Table(title=f"bad candidates under {summary['clients']} clients")
    for col in ("round", "verdict → 100% stable", "candidate answered before verdict",
                "candidate requests", "share of rollout traffic", "reason"):
        table.add_column(col)
    for i, r in enumerate(summary["rounds_detail"], 1):
        table.add_row(str(i), f"{r['to_stable_s'] * 1000:.0f} ms",
                      f"{r['candidate_answered_before_verdict_s'] * 1000:.0f} ms",
                      str(r["candidate_requests"]), f"{r['candidate_share']:.2%}", r["reason"])
    out.print(table)
    ok = summary["to_stable_max_s"] <= ROLLBACK_TARGET_S and summary["failed_requests"] == 0
    out.print(f"good candidate: {summary['good_candidate']}; {summary['requests']} requests "
              f"at {summary['requests_per_s']:.0f}/s, failed: {summary['failed_requests']} "
              f"{summary['failed_statuses']}; verdict → stable median "
              f"{summary['to_stable_median_s'] * 1000:.0f} ms, max "
              f"{summary['to_stable_max_s'] * 1000:.0f} ms (target ≤ 1000 ms, 0 failed): "
              f"{'met' if ok else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed")
    summary = run(2 if args.quick else args.rounds, args.clients)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    report(summary)


if __name__ == "__main__":
    main()
