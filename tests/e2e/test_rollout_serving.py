"""End to end: real ``modelport serve`` processes following a deployment's desired state.

The desired state is changed directly in the registry (as the controller does); the
servers converge, split traffic, say which version answered, and report per-version
counters back through the registry. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelport.registry.entities import Mode
from modelport.registry.traffic import fleet_total
from tests.e2e.server import ServerProcess
from tests.e2e.test_server_lifecycle import oip_body, register_iris, registry, wait_for

pytestmark = pytest.mark.e2e
INFER = "/v2/models/m/infer"
# These tests play the controller themselves (they write the desired state directly);
# serve's embedded controller would judge the rollouts too and move them.
NO_CONTROLLER = ["--no-controller"]


def start_rollout(home: Path, mode: Mode, *, weight: float = 0.0,
                  sticky: str | None = None) -> int:
    """Candidate m/2 joins deployment "m" (stable m/1); returns the rollout id."""
    with registry(home) as reg:
        rollout, _ = reg.deployments.start_rollout(
            "m", model_name="m", candidate=2, strategy=mode.value, steps=[weight or 100],
            actor="test", mode=mode, stable=1, sticky=sticky)
        if weight:
            reg.deployments.update("m", "test", "step", weight=weight)
    return rollout.id


def traffic(home: Path) -> dict[int, list[dict[str, Any]]]:
    """Every server's reported counters for deployment "m", by version."""
    with registry(home) as reg:
        out: dict[int, list[dict[str, Any]]] = {}
        for r in reg.records.traffic("m"):
            out.setdefault(r.version, []).append({**r.stats, "server_id": r.server_id})
        return out


def candidate_ready(home: Path, servers: int = 1) -> Callable[[], bool]:
    """True once ``servers`` server processes report version 2 loaded and warmed."""
    def check() -> bool:
        reports = traffic(home).get(2, [])
        return sum(r["state"] == "ready" for r in reports) >= servers
    return check


def infer_many(url: str, body: dict[str, Any], n: int,
               headers: dict[str, str] | None = None) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=30) as client:
        return [client.post(INFER, json=body, headers=headers) for _ in range(n)]


def check_answers(responses: list[httpx.Response], expected: dict[str, list[int]]) -> None:
    for r in responses:
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["model_version"] == r.headers["x-model-version"], (doc, r.headers)
        assert doc["outputs"][0]["data"] == expected[doc["model_version"]], doc


# -- canary split, over two workers ------------------------------------------------------


def test_canary_30_splits_and_each_worker_reports(home: Path) -> None:
    Xq, expected = register_iris(home)
    body = oip_body(Xq)
    with ServerProcess(home, ["m@champion", "--workers", "2", *NO_CONTROLLER]) as server:
        start_rollout(home, Mode.CANARY)
        wait_for(candidate_ready(home, servers=2), 60, "both workers load v2", server)
        with registry(home) as reg:
            reg.deployments.update("m", "test", "step", weight=30.0)
        time.sleep(1.0)  # convergence is within 1 s
        responses = infer_many(server.url, body, 400)
        check_answers(responses, expected)
        share = sum(r.headers["x-model-version"] == "2" for r in responses) / len(responses)
        assert 0.2 < share < 0.4, share

        def counted() -> bool:
            t = traffic(home)
            return sum(r["requests"] for v in t.values() for r in v) >= 400
        wait_for(counted, 10, "every request counted in the registry", server)
        t = traffic(home)
        assert {r["server_id"] for r in t[2]} == {r["server_id"] for r in t[1]}
        assert len({r["server_id"] for r in t[2]}) == 2, t  # one id per worker
        assert fleet_total(t[2]).requests == sum(
            r.headers["x-model-version"] == "2" for r in responses)
        assert fleet_total(t[1]).errors == fleet_total(t[2]).errors == 0


# -- sticky assignment -------------------------------------------------------------------


def test_sticky_header_pins_each_client_to_one_version(home: Path) -> None:
    Xq, expected = register_iris(home)
    body = oip_body(Xq)
    with ServerProcess(home, ["m@champion", *NO_CONTROLLER]) as server:
        start_rollout(home, Mode.CANARY, weight=50.0, sticky="X-User")
        wait_for(candidate_ready(home), 60, "v2 loaded", server)
        time.sleep(0.5)
        sides = {}
        for user in range(30):
            responses = infer_many(server.url, body, 4, headers={"X-User": f"user-{user}"})
            check_answers(responses, expected)
            versions = {r.headers["x-model-version"] for r in responses}
            assert len(versions) == 1, (user, versions)
            sides[user] = versions.pop()
        assert set(sides.values()) == {"1", "2"}, sides
        # Without the header: random per request, so both sides.
        loose = {r.headers["x-model-version"] for r in infer_many(server.url, body, 60)}
        assert loose == {"1", "2"}


# -- shadow ------------------------------------------------------------------------------


def test_shadow_never_answers_but_is_counted(home: Path) -> None:
    Xq, expected = register_iris(home)
    body = oip_body(Xq)
    with ServerProcess(home, ["m@champion", *NO_CONTROLLER]) as server:
        start_rollout(home, Mode.SHADOW)
        wait_for(candidate_ready(home), 60, "shadow candidate loaded", server)
        time.sleep(0.5)
        responses = infer_many(server.url, body, 100)
        check_answers(responses, expected)
        assert {r.headers["x-model-version"] for r in responses} == {"1"}

        def compared() -> bool:
            return fleet_total(traffic(home).get(2, [])).shadow_compared >= 100 * len(Xq)
        wait_for(compared, 10, "shadow comparisons in the registry", server)
        cand = fleet_total(traffic(home)[2])
        assert cand.agreement == 0.0  # v2 predicts the opposite label on every row
        assert cand.requests >= 100 and cand.errors == 0
        assert fleet_total(traffic(home)[1]).requests == 100


# -- desired-state changes under load -----------------------------------------------------


async def _load(url: str, body: dict[str, Any], *, clients: int, duration: float,
                moves: list[tuple[float, Callable[[], None]]]) -> dict[str, Any]:
    """``clients`` loops POSTing ``body``; each move runs (in a thread) at its time."""
    records: list[tuple[float, float, int, str | None, Any]] = []
    errors: list[str] = []
    marks: list[tuple[float, float]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=15.0) as client:
        t0 = time.monotonic()

        async def one_client() -> None:
            while time.monotonic() - t0 < duration:
                started = time.monotonic()
                try:
                    resp = await client.post(INFER, json=body)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                doc = resp.json() if resp.status_code == 200 else resp.text
                records.append((started, time.monotonic(), resp.status_code,
                                resp.headers.get("x-model-version"), doc))

        async def mover() -> None:
            for at, move in moves:
                await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
                begun = time.monotonic()
                await asyncio.to_thread(move)
                marks.append((begun, time.monotonic()))

        await asyncio.gather(*(one_client() for _ in range(clients)), mover())
    return {"records": records, "errors": errors, "marks": marks}


def _convergence(records: list[Any], after: float, version: str,
                 until: float = float("inf")) -> tuple[float, float]:
    """(first answer by ``version``, last answer by another version to a request sent
    after the change and answered before ``until``), in seconds after ``after``."""
    first = min(r[1] for r in records if r[3] == version and r[1] > after) - after
    stale = [r[1] for r in records if after < r[0] and r[1] < until and r[3] != version]
    return first, (max(stale) - after if stale else 0.0)


def test_switch_to_candidate_and_back_under_load_fails_nothing(home: Path) -> None:
    Xq, expected = register_iris(home)
    body = oip_body(Xq)
    with ServerProcess(home, ["m@champion", *NO_CONTROLLER]) as server:
        rollout_id = start_rollout(home, Mode.CANARY)
        wait_for(candidate_ready(home), 60, "v2 loaded beside v1", server)

        def to_candidate() -> None:
            with registry(home) as reg:
                reg.deployments.transition(rollout_id, "test", "step",
                                           deployment_changes={"weight": 100.0})

        def rollback() -> None:
            with registry(home) as reg:
                reg.deployments.transition(
                    rollout_id, "test", "rolled_back", reason="test",
                    rollout_changes={"status": "rolled_back"},
                    deployment_changes={"candidate": None, "mode": None, "weight": 0.0})

        out = asyncio.run(_load(server.url, body, clients=64, duration=7.0,
                                moves=[(1.5, to_candidate), (4.0, rollback)]))
        records, errors = out["records"], out["errors"]
        assert not errors, f"{len(errors)} transport errors, e.g. {errors[:3]}\n{server.log()}"
        bad = [r for r in records if r[2] != 200]
        assert not bad, f"{len(bad)} of {len(records)} failed, e.g. {bad[:3]}"
        for _, _, _, header, doc in records:
            assert doc["model_version"] == header, (header, doc)
            assert doc["outputs"][0]["data"] == expected[header], (header, doc)
        (_, up), (_, back) = out["marks"]
        assert {r[3] for r in records if r[1] < out["marks"][0][0]} == {"1"}
        window = [r for r in records if up + 1.0 < r[0] and r[1] < out["marks"][1][0]]
        stale = [(round(r[0] - up, 3), round(r[1] - up, 3)) for r in window if r[3] != "2"]
        assert window and not stale, f"version 1 more than 1 s after weight 100: {stale[:5]}"
        assert {r[3] for r in records if r[0] > back + 1.0} == {"1"}, \
            f"still version 2 more than 1 s after the rollback\n{server.log()}"
        to_v2, settle_v2 = _convergence(records, up, "2", out["marks"][1][0])
        to_v1, settle_v1 = _convergence(records, back, "1")
        print(f"\n{len(records)} requests, 0 failed; weight 100: first v2 answer "
              f"{to_v2 * 1000:.0f} ms after the change, all v2 after {settle_v2 * 1000:.0f} ms; "
              f"rollback: first v1 answer {to_v1 * 1000:.0f} ms, all v1 after "
              f"{settle_v1 * 1000:.0f} ms")


# -- a server killed mid-rollout ---------------------------------------------------------


def test_server_killed_mid_rollout_converges_after_restart(home: Path) -> None:
    Xq, expected = register_iris(home)
    body = oip_body(Xq)
    start_rollout(home, Mode.CANARY, weight=50.0)
    with ServerProcess(home, ["m@champion", *NO_CONTROLLER]) as server:
        wait_for(candidate_ready(home), 60, "v2 loaded", server)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(30)
    # Meanwhile the rollout moved on: the new process must serve the registry's state.
    with registry(home) as reg:
        reg.deployments.update("m", "test", "step", weight=100.0)
    with ServerProcess(home, ["m@champion", *NO_CONTROLLER]) as server:
        wait_for(candidate_ready(home, servers=2), 60, "the restarted server loads v2",
                 server)
        time.sleep(0.5)
        responses = infer_many(server.url, body, 40)
        check_answers(responses, expected)
        assert {r.headers["x-model-version"] for r in responses} == {"2"}


# -- every answer is the answering version's answer, under concurrent batching -----------


def test_concurrent_rows_each_get_their_own_versions_answer(home: Path, tmp_path: Path) -> None:
    """32 clients send distinct single rows (OIP JSON and ``/predict``) while a 50%
    canary splits them between two versions that disagree on every row: each answer must
    be exactly the answering version's prediction for that row, whatever the batcher
    merged it with."""
    import threading

    import numpy as np
    import yaml

    register_iris(home)
    rng = np.random.default_rng(7)  # the rows register_iris trained on
    X = rng.normal(size=(120, 4))
    with registry(home) as reg:
        truth = {str(v): reg.load_model(f"m/{v}").predict(X).tolist() for v in (1, 2)}
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({"models": [{
        "uri": "m@champion", "batching": {"max_batch_size": 16, "max_latency_ms": 5}}]}))
    problems: list[str] = []
    seen: dict[str, int] = {"1": 0, "2": 0}
    lock = threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for j in range(25):
                i = (k * 25 + j) % len(X)
                row = X[i:i + 1]
                if k % 2:
                    r = http.post(INFER, json=oip_body(row))
                    got = r.json()["outputs"][0]["data"] if r.status_code == 200 else None
                else:
                    r = http.post("/predict", json={"features": row.tolist()})
                    got = r.json()["predictions"] if r.status_code == 200 else None
                version = r.headers.get("x-model-version", "?")
                with lock:
                    if got is None:
                        problems.append(f"row {i}: {r.status_code} {r.text[:200]}")
                    elif got != [truth[version][i]]:
                        problems.append(f"row {i}: v{version} answered {got}, "
                                        f"its prediction is {truth[version][i]}")
                    else:
                        seen[version] += 1

    with ServerProcess(home, ["--config", str(config), *NO_CONTROLLER]) as server:
        start_rollout(home, Mode.CANARY, weight=50.0)
        wait_for(candidate_ready(home), 60, "v2 loaded", server)
        time.sleep(0.5)
        threads = [threading.Thread(target=client, args=(k,)) for k in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not problems, problems[:10]
    assert seen["1"] > 100 and seen["2"] > 100, seen  # both versions answered a share
