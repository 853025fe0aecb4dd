"""End to end: ``modelport serve --engine ray --replicas 2`` on a local Ray instance.

One server for the module (Ray's start-up is the slow part): OIP inference through
Ray Serve's proxy, both replicas reporting as two servers, a canary of a good version
promoted and of a bad one rolled back by the embedded controller with traffic on both
replicas, then SIGTERM: exit 0 and none of the processes it started (Ray's head
processes, workers, replicas) left. Ray runs under its own ``RAY_TMPDIR``, apart from
any other Ray on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelport.registry.entities import RolloutStatus
from tests.e2e.conftest import Cli
from tests.e2e.server import ServerProcess
from tests.e2e.test_delivery import register, rollout_start, wait_final
from tests.e2e.test_rollout_serving import traffic
from tests.e2e.test_server_lifecycle import oip_body, registry, wait_for

pytestmark = pytest.mark.e2e
CLIENTS = 8


def _require_ray_serve() -> None:
    try:
        import ray.serve  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Ray Serve is not installed (pip install 'modelport[ray]'): {exc}")
        pytest.skip(f"Ray Serve is not installed: {exc}")


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, start time) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), fields[0], fields[19])
    return table


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid`` (Ray's head processes, raylet's workers, the
    replicas), with its start time, so a reused pid is not mistaken for it later."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = table[child][2]
            todo.append(child)
    return found


def still_running(procs: dict[int, str]) -> dict[int, str]:
    """Those of ``procs`` that still run (the same start time, not a zombie)."""
    table = _proc_table()
    return {pid: start for pid, start in procs.items()
            if pid in table and table[pid][2] == start and table[pid][1] != "Z"}


@dataclass
class Served:
    server: ServerProcess
    home: Path
    rows: np.ndarray
    ray_procs: dict[int, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    _require_ray_serve()
    home = tmp_path_factory.mktemp("rayserve") / "home"
    rows = register(home)
    # Its own Ray folder (short: Ray's unix socket paths must stay within 107 bytes), so
    # a Ray another test or user runs on this machine is neither joined nor touched.
    ray_dir = tempfile.mkdtemp(prefix="mpray-", dir="/tmp")
    server = ServerProcess(home, ["m@champion", "--engine", "ray", "--replicas", "2"],
                           env={"RAY_TMPDIR": ray_dir}, ready_timeout=240)
    ray_procs: dict[int, str] = {}
    try:
        with server:
            # Ready through the proxy means the replicas in its rotation are warm; the
            # second may still be loading. Both count once both report m/1 ready.
            wait_for(lambda: _ready_servers(home) == 2, 180, "both replicas load m/1", server)
            assert server.proc is not None
            ray_procs = descendants(server.proc.pid)
            yield Served(server, home, rows, ray_procs)
    finally:
        # Whatever happened above, no process this server started outlives the module.
        for pid in still_running(ray_procs):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_dir, ignore_errors=True)


def _ready_servers(home: Path) -> int:
    return sum(r["state"] == "ready" for r in traffic(home).get(1, []))


# -- flags: checked before anything starts (no Ray needed) -------------------------------


def test_bad_engine_flags_are_usage_errors(cli: Cli, tmp_path: Path) -> None:
    # Each message is checked in tests/serving/test_ray_engine.py; here, that the CLI
    # says it in one line with exit 2 before it opens anything.
    home = tmp_path / "home"
    cases = [
        (["--engine", "ray", "--replicas", "2", "--autoscale", "1:2"],
         "--replicas and --autoscale exclude each other"),
        (["--engine", "ray", "--workers", "2"], "--workers is for the local engine"),
        (["--engine", "ray", "--autoscale", "3:1"], "MIN (3) is above MAX (1)"),
        (["--replicas", "2"], "--replicas needs --engine ray"),
        (["--engine", "gpu"], "use local or ray"),
    ]
    results = cli.many(home, [["serve", "m@champion", *args] for args, _ in cases])
    for (_, message), result in zip(cases, results, strict=True):
        assert result.returncode == 2, result
        assert message in result.stderr, result
        assert "Traceback" not in result.stderr, result
    assert not (home / "registry.db").exists()  # refused before the registry was opened


# -- the served application --------------------------------------------------------------


def test_oip_inference_and_every_route_through_the_proxy(served: Served) -> None:
    with registry(served.home) as reg:
        expected = reg.load_model("m/1").predict(served.rows[:5]).tolist()
    with httpx.Client(base_url=served.server.url, timeout=30) as client:
        assert client.get("/v2/health/ready").json() == {"ready": True}
        r = client.post("/v2/models/m/infer", json=oip_body(served.rows[:5]))
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["model_name"] == "m" and doc["model_version"] == "1"
        assert doc["outputs"][0]["data"] == expected
        assert r.headers["x-model-version"] == "1"
        ids = r.headers.get_list("x-request-id")
        assert len(ids) == 1 and ids[0], r.headers  # one id, whoever added it
        simple = client.post("/predict", json={"features": served.rows[:5].tolist()})
        assert simple.status_code == 200, simple.text
        assert client.post("/v2/models/m/infer", json={"inputs": []}).status_code == 400
        assert client.post("/v2/models/zz/infer", json=oip_body(served.rows[:1])
                           ).status_code == 404
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "modelport_requests_total" in metrics.text
        assert client.get("/dashboard").status_code == 200
        # The control plane is mounted as in every replica of the local engine: refused
        # without auth, not missing.
        assert client.get("/api/models").status_code in (401, 403)


def test_both_replicas_serve_and_report_as_two_servers(served: Served) -> None:
    # Every row once, one per request: the stable's history keeps the loader's mix of
    # inputs (the canary below judges a step without stable traffic by that history).
    bodies = [oip_body(served.rows[i:i + 1]) for i in range(len(served.rows))]

    async def concurrent() -> list[int]:
        # Ray's router picks the less busy of two replicas: with requests one after the
        # other both look idle and the split can be lopsided, so send them together.
        async with httpx.AsyncClient(base_url=served.server.url, timeout=30) as client:
            async def one(i: int) -> list[int]:
                return [(await client.post("/v2/models/m/infer", json=b)).status_code
                        for b in bodies[i::CLIENTS]]
            return [s for batch in await asyncio.gather(*(one(i) for i in range(CLIENTS)))
                    for s in batch]

    assert set(asyncio.run(concurrent())) == {200}

    def two_servers() -> bool:
        return len({r["server_id"] for r in traffic(served.home).get(1, [])
                    if r["requests"]}) == 2
    wait_for(two_servers, 30, "both replicas report traffic for m/1", served.server)


async def _load(url: str, rows: np.ndarray, stop: asyncio.Event) -> list[tuple[int, str]]:
    """CLIENTS loops POSTing one row each to /predict: (status, X-Model-Version)."""
    bodies = [{"features": [r.tolist()]} for r in rows]
    answers: list[tuple[int, str]] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=15.0) as client:
        async def one(i: int) -> None:
            n = i
            while not stop.is_set():
                try:
                    r = await client.post("/predict", json=bodies[n % len(bodies)])
                    answers.append((r.status_code, r.headers.get("x-model-version", "")))
                except httpx.HTTPError as exc:
                    answers.append((0, type(exc).__name__))
                n += CLIENTS

        await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    return answers


def test_canary_promoted_then_bad_candidate_rolled_back_across_replicas(
        served: Served) -> None:
    home = served.home
    outcome: dict[str, Any] = {}

    def deliver() -> None:
        rollout_start(home, 2, "1s")
        outcome["good"] = wait_final(home, timeout=120)
        rollout_start(home, 3, "60s")
        outcome["bad"] = wait_final(home, timeout=120)
        time.sleep(0.5)  # counters of the last answers reach the registry

    async def scenario() -> list[tuple[int, str]]:
        stop = asyncio.Event()
        task = asyncio.create_task(_load(served.server.url, served.rows, stop))
        try:
            await asyncio.to_thread(deliver)
        finally:
            stop.set()
        return await task

    answers = asyncio.run(scenario())
    good, bad = outcome["good"], outcome["bad"]
    assert good.status is RolloutStatus.PROMOTED, good.reason
    assert bad.status is RolloutStatus.ROLLED_BACK, bad.reason
    assert "shift" in bad.reason
    failed = [a for a in answers if a[0] != 200]
    assert not failed, f"{len(failed)} of {len(answers)} failed: {failed[:5]}"
    assert {a[1] for a in answers} == {"1", "2", "3"}
    with registry(home) as reg:
        assert reg.get("m@champion").version == 2
        dep = reg.deployments.get("m")
        assert (dep.stable, dep.candidate) == (2, None)
    reports = traffic(home)
    for version in (2, 3):  # each candidate was served by both replicas
        servers = {r["server_id"] for r in reports.get(version, []) if r["requests"]}
        assert len(servers) == 2, (version, reports.get(version))


def test_sigterm_exits_0_and_leaves_no_ray_process(served: Served) -> None:
    assert served.server.proc is not None
    served.ray_procs.update(descendants(served.server.proc.pid))
    names = {_name(pid) for pid in served.ray_procs}
    assert {"raylet", "gcs_server"} <= names, names  # else the check below proves nothing
    assert any(n.startswith("ray::ServeReplica") for n in names), names
    assert served.server.terminate(timeout=120) == 0, served.server.log()
    wait_for(lambda: not still_running(served.ray_procs), 30, "Ray's processes exit",
             served.server)


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(
            errors="replace").rsplit("/", 1)[-1]
    except OSError:
        return "?"
