"""End to end, all real: ``modelport serve`` with its embedded controller, the real CLI
starting rollouts, and 64 concurrent clients. A good candidate walks its canary to
promoted; a bad one (it answers one class for every row) is rolled back by the
controller on its own; no request fails on the way and every answer names the version
that gave it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelport.registry.entities import RolloutStatus
from tests.e2e.conftest import cli_env
from tests.e2e.server import ServerProcess
from tests.e2e.test_server_lifecycle import registry

pytestmark = pytest.mark.e2e
CLIENTS = 64


def register(home: Path) -> np.ndarray:
    """m/1 champion, m/2 a good candidate (another C), m/3 a constant one; query rows."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = np.digitize(X[:, 0] + X[:, 1], [-0.7, 0.7])  # three balanced-ish classes
    with registry(home) as reg:
        reg.log_model(LogisticRegression().fit(X, y), "m", input_example=X[:5])
        reg.log_model(LogisticRegression(C=0.5).fit(X, y), "m", input_example=X[:5])
        reg.log_model(DummyClassifier(strategy="constant", constant=0).fit(X, y), "m",
                      input_example=X[:5])
        reg.set_alias("m", "champion", 1)
    return X[:64]


def rollout_start(home: Path, version: int, step: str) -> None:
    """``modelport rollout start m --candidate m/V ...`` as a user types it."""
    proc = subprocess.run(
        [sys.executable, "-m", "modelport", "rollout", "start", "m", "--candidate",
         f"m/{version}", "--strategy", "canary", "--steps", "25,100", "--step-duration", step],
        env=cli_env(home), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def wait_final(home: Path, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with registry(home) as reg:
            r = reg.deployments.rollouts("m")[0]
        if not r.status.active:
            return r
        time.sleep(0.1)
    raise AssertionError(f"rollout still active after {timeout}s: {r}")


async def load(url: str, rows: np.ndarray, stop: asyncio.Event) -> list[tuple[float, int, str]]:
    """CLIENTS loops, one row each time; (answered at, status, X-Model-Version)."""
    bodies = [{"features": [r.tolist()]} for r in rows]
    answers: list[tuple[float, int, str]] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=15.0) as client:
        async def one(i: int) -> None:
            n = i
            while not stop.is_set():
                try:
                    r = await client.post("/predict", json=bodies[n % len(bodies)])
                    answers.append((time.time(), r.status_code,
                                    r.headers.get("x-model-version", "")))
                except httpx.HTTPError as exc:
                    answers.append((time.time(), 0, type(exc).__name__))
                n += CLIENTS

        await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    return answers


def test_good_candidate_promoted_bad_one_rolled_back_by_the_controller(home: Path) -> None:
    rows = register(home)
    with ServerProcess(home, ["m@champion"]) as server:
        outcome: dict[str, Any] = {}

        def deliver() -> None:
            time.sleep(1.0)
            rollout_start(home, 2, "1s")
            outcome["good"] = wait_final(home)
            time.sleep(1.0)
            rollout_start(home, 3, "60s")
            outcome["bad"] = wait_final(home)
            time.sleep(2.0)  # answers sent after the switch come back

        async def scenario() -> list[tuple[float, int, str]]:
            stop = asyncio.Event()
            task = asyncio.create_task(load(server.url, rows, stop))
            try:
                await asyncio.to_thread(deliver)
            finally:
                stop.set()
            return await task

        answers = asyncio.run(scenario())
        good, bad = outcome["good"], outcome["bad"]
        assert good.status is RolloutStatus.PROMOTED, good
        assert bad.status is RolloutStatus.ROLLED_BACK, bad
        assert "shift" in bad.reason
        failed = [a for a in answers if a[1] != 200]
        assert not failed, f"{len(failed)} of {len(answers)} failed: {failed[:5]}\n{server.log()}"
        with registry(home) as reg:
            assert reg.get("m@champion").version == 2  # promoted, then kept through the rollback
            dep = reg.deployments.get("m")
            assert (dep.stable, dep.candidate, dep.previous) == (2, None, 1)
            events = reg.deployments.events("m")
        verdict = next(e for e in events if e.kind == "rolled_back").at.timestamp()
        by3 = [a[0] for a in answers if a[2] == "3"]
        assert by3, "the bad candidate never got traffic: the test proves nothing"
        # Traffic back on stable: nothing answered by v3 more than 1 s after the verdict.
        assert max(by3) - verdict < 1.0, (max(by3) - verdict, server.log())
        assert {a[2] for a in answers} == {"1", "2", "3"}
        assert [e.kind for e in events].count("step_started") >= 3


PIPELINE = """\
name: m
steps:
  - train: [{python}, train.py]
  - register: {name: m, file: model.skops}
  - gate: {data: eval.csv, target: y, rules: ["accuracy >= champion - 0.05"]}
  - rollout:
      endpoint: m
      strategy: canary
      steps: [50, 100]
      step_duration: 1s
      require_gate: true
      wait: true
    timeout: 3m
"""

TRAIN = """\
import numpy as np, pandas as pd, skops.io as sio
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(3)
X = rng.normal(size=(300, 4))
y = np.digitize(X[:, 0] + X[:, 1], [-0.7, 0.7])
sio.dump(LogisticRegression(C=2.0).fit(X, y), "model.skops")
pd.DataFrame(X, columns=[f"f{i}" for i in range(4)]).assign(y=y).to_csv("eval.csv", index=False)
"""


def test_pipeline_trains_registers_gates_and_rolls_out_to_a_live_server(
        home: Path, tmp_path: Path) -> None:
    rows = register(home)
    project = tmp_path / "project"
    project.mkdir()
    (project / "modelport.yaml").write_text(PIPELINE.replace("{python}", sys.executable))
    (project / "train.py").write_text(TRAIN)
    with ServerProcess(home, ["m@champion"]) as server:
        async def scenario() -> tuple[subprocess.CompletedProcess[str], list[Any]]:
            stop = asyncio.Event()
            task = asyncio.create_task(load(server.url, rows, stop))
            try:
                proc = await asyncio.to_thread(
                    subprocess.run, [sys.executable, "-m", "modelport", "pipeline", "run",
                                     "--json"],
                    cwd=project, env=cli_env(home), capture_output=True, text=True,
                    timeout=300, check=False)
            finally:
                stop.set()
            return proc, await task

        proc, answers = asyncio.run(scenario())
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert not [a for a in answers if a[1] != 200]
    with registry(home) as reg:
        assert reg.get("m@champion").version == 4  # trained, registered and promoted
        gate = reg.records.latest_gate("m", 4)
        assert gate is not None and gate.passed
        run = reg.records.pipeline_runs("m")[0]
        assert run.status == "succeeded"
        assert [s["status"] for s in run.steps] == ["succeeded"] * 4
    assert "4" in {a[2] for a in answers}
