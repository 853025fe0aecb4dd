"""The worker app factory that adds the dashboard to the inference server.

``modelport serve`` hands uvicorn this factory (``FACTORY``) instead of the plain one
when the dashboard is on, so the serving package never imports the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from starlette.routing import BaseRoute

from modelport.client import Registry
from modelport.config import Settings
from modelport.dashboard.routes import Dashboard
from modelport.monitoring.layout import default_root
from modelport.serving.config import ServeSpec
from modelport.serving.middleware import ASGIApp
from modelport.serving.server import build_app, spec_from_env

FACTORY = "modelport.dashboard.factory:app_from_env"


def extension(registry: Registry, spec: ServeSpec
              ) -> tuple[Sequence[BaseRoute], Sequence[Callable[[], Coroutine[Any, Any, None]]]]:
    """The dashboard's routes and its sampler, for one worker."""
    settings = Settings.load(spec.home, database_url=spec.database_url)
    root = spec.monitoring.root or default_root(settings)
    served = {e.name: e.uri.name for e in spec.endpoints()}
    dashboard = Dashboard(registry, root, served, period=spec.dashboard.refresh_seconds)
    return dashboard.routes(), dashboard.background()


def app_from_env() -> ASGIApp:
    """uvicorn's factory in each worker process: the server plus the dashboard."""
    return build_app(spec_from_env(), extension)


__all__ = ["FACTORY", "app_from_env", "extension"]
