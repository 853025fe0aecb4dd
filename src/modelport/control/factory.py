"""The worker app factory of ``modelport serve``: the server plus ``/api/`` (and the
dashboard unless it is off), so the serving package never imports either."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from starlette.routing import BaseRoute

from modelport.client import Registry
from modelport.control.api import PREFIX, ControlAPI
from modelport.serving.config import ServeSpec
from modelport.serving.middleware import ASGIApp
from modelport.serving.server import build_app, spec_from_env

FACTORY = "modelport.control.factory:app_from_env"
Job = Callable[[], Coroutine[Any, Any, None]]


def extension(registry: Registry, spec: ServeSpec
              ) -> tuple[Sequence[BaseRoute], Sequence[Job]]:
    """The control plane's routes, and the dashboard's routes and sampler if it is on."""
    routes: list[BaseRoute] = list(
        ControlAPI(registry, max_upload_bytes=spec.limits.max_upload_bytes).routes())
    background: list[Job] = []
    if spec.dashboard.enabled:
        from modelport.dashboard.factory import extension as dashboard

        more, jobs = dashboard(registry, spec)
        routes += more
        background += jobs
    return routes, background


def body_limits(spec: ServeSpec) -> list[tuple[str, int]]:
    """Model uploads may be far larger than an inference request."""
    return [(f"{PREFIX}/models/", spec.limits.max_upload_bytes)]


def app_from_env() -> ASGIApp:
    """uvicorn's factory in each worker process."""
    spec = spec_from_env()
    return build_app(spec, extension, body_limits=body_limits(spec))


__all__ = ["FACTORY", "app_from_env", "body_limits", "extension"]
