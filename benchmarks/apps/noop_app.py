"""The HTTP ceiling: a Starlette app whose one POST route answers a fixed small JSON.

It neither reads nor parses the body, so what it measures is uvicorn (uvloop +
httptools) plus Starlette's routing and response, nothing else::

    uvicorn noop_app:app --app-dir benchmarks/apps --loop uvloop --http httptools
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"predictions":[0]}'


async def noop(_: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/predict", noop, methods=["POST"])])
