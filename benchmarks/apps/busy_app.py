"""The HTTP ceiling plus a fixed CPU cost: the no-op app, spinning ``BUSY_US`` µs (from
the environment) on the event loop before it answers.

``benchmarks/serving.py`` sets ``BUSY_US`` to modelport's own CPU time per request,
measured in the same run, so this app has modelport's throughput with none of its
code: its p99 at concurrency 64 is what any server that busy gets on this machine at
that moment (the control for modelport's p99), not what batching or modelport adds::

    BUSY_US=250 uvicorn busy_app:app --app-dir benchmarks/apps --loop uvloop --http httptools
"""

from __future__ import annotations

import os
import time

from noop_app import BODY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

COST = float(os.environ.get("BUSY_US", "0")) / 1e6


async def busy(_: Request) -> Response:
    end = time.perf_counter() + COST
    while time.perf_counter() < end:  # CPU, not a sleep: it holds the loop like work does
        pass
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/predict", busy, methods=["POST"])])
