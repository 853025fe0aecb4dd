"""``modelport serve``'s own app under cProfile, for ``benchmarks/serving.py --profile``.

Builds the app exactly as ``modelport serve --config CONFIG`` does (``build_app`` of the
same ``ServeSpec``) and runs it on uvicorn with the same loop, parser and options. The
profiler measures the event-loop thread's CPU time (``time.thread_time``), so time the
thread spends preempted on a busy machine is not charged to whatever ran last; the
model's executor thread is not profiled (its cost is the in-process floor). Two extra
routes switch it: ``POST /__profile/start`` starts a fresh profile, ``POST
/__profile/stop`` writes it to the pstats file given on the command line and answers
the thread's CPU seconds over the window (to compare with what the profiler saw of
them: the rest is C code that ran with no Python frame, i.e. uvloop and httptools)::

    MODELPORT_HOME=... python benchmarks/apps/modelport_profiled.py serve.yaml PORT OUT
"""

from __future__ import annotations

import cProfile
import gc
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from modelport.serving.config import load_spec
from modelport.serving.server import build_app


def main() -> None:
    config, port, out = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    spec = load_spec(config, [])
    spec = spec.model_copy(update={"home": os.environ["MODELPORT_HOME"]})
    app = build_app(spec)
    state: dict[str, Any] = {"profiler": None, "cpu": 0.0, "wall": 0.0, "gc": None,
                             "gc_started": 0.0}

    def gc_timer(phase: str, info: dict[str, Any]) -> None:
        # Garbage-collector pauses per generation during the window (they are charged
        # to whichever function allocated when a collection triggered).
        if state["gc"] is None:
            return
        if phase == "start":
            state["gc_started"] = time.perf_counter()
            return
        took = (time.perf_counter() - state["gc_started"]) * 1e3
        gen = state["gc"].setdefault(str(info["generation"]),
                                     {"count": 0, "total_ms": 0.0, "max_ms": 0.0})
        gen["count"] += 1
        gen["total_ms"] += took
        gen["max_ms"] = max(gen["max_ms"], took)

    gc.callbacks.append(gc_timer)

    async def respond(send: Any, payload: dict[str, Any]) -> None:
        body = orjson.dumps(payload)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def profiled(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path == "/__profile/start":  # a fresh profile per window
            state["profiler"] = cProfile.Profile(time.thread_time)
            state["gc"] = {}
            state["cpu"], state["wall"] = time.thread_time(), time.perf_counter()
            state["profiler"].enable()
            await respond(send, {"profiling": True})
            return
        if path == "/__profile/stop" and state["profiler"] is not None:
            state["profiler"].disable()
            cpu = time.thread_time() - state["cpu"]
            wall = time.perf_counter() - state["wall"]
            state["profiler"].dump_stats(out)
            collections, state["profiler"], state["gc"] = state["gc"], None, None
            await respond(send, {"thread_cpu_s": cpu, "wall_s": wall, "gc": collections,
                                 "gc_threshold": gc.get_threshold(),
                                 "gc_objects": len(gc.get_objects())})
            return
        await app(scope, receive, send)

    uvicorn.run(
        profiled, host="127.0.0.1", port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=False, log_level="warning", server_header=False, proxy_headers=False,
    )


if __name__ == "__main__":
    main()
