"""Running the app under uvicorn, in one process or several sharing the port.

Each worker process builds its own app from the options passed in the environment
(``MODELPORT_SERVE_SPEC``), so one code path serves ``--workers 1`` and ``--workers N``.
uvicorn handles SIGTERM: it stops accepting, lets in-flight requests finish, runs the
app's shutdown (which drains every batcher), then exits 0.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute

from modelport.client import Registry
from modelport.config import Settings
from modelport.monitoring.labels import LabelLog
from modelport.monitoring.layout import default_root
from modelport.monitoring.predlog import PredictionLog
from modelport.serving.app import create_app
from modelport.serving.auth import Authenticator
from modelport.serving.config import ServeSpec
from modelport.serving.metrics import ServerMetrics
from modelport.serving.middleware import ASGIApp
from modelport.serving.monitor import Monitoring, worker_id
from modelport.serving.repository import ModelRepository
from modelport.serving.traffic import new_server_id

SPEC_ENV = "MODELPORT_SERVE_SPEC"


# What a caller may add to each worker's app: routes and background tasks, built from
# the worker's registry and spec (the CLI adds the dashboard this way).
Extension = Callable[[Registry, ServeSpec],
                     tuple[Sequence[BaseRoute], Sequence[Callable[[], Coroutine[Any, Any, None]]]]]
DEFAULT_FACTORY = "modelport.serving.server:app_from_env"


def build_app(spec: ServeSpec, extension: Extension | None = None, *,
              body_limits: Sequence[tuple[str, int]] = ()) -> ASGIApp:
    """The app for one process: registry, repository, metrics, limits (and extras;
    ``body_limits`` as in ``create_app``, for the extension's routes)."""
    settings = Settings.load(spec.home, database_url=spec.database_url)
    registry = Registry(settings=settings)
    server_id = new_server_id()
    monitoring = None
    if spec.monitoring.enabled:
        root = spec.monitoring.root or default_root(settings)
        # One file set per worker: the traffic id is unique per process and restart.
        worker = worker_id(server_id)
        monitoring = Monitoring(
            PredictionLog(root, worker_id=worker, sample_rate=0.0,
                          sample_rates=spec.sample_rates()),
            LabelLog(root, worker_id=f"feedback_{worker}"), interval=spec.monitoring.interval,
            retention_days=spec.monitoring.retention_days)
    repository = ModelRepository(registry, spec.endpoints(), ServerMetrics(),
                                 poll_interval=spec.poll_interval,
                                 deployment_poll_interval=spec.deployment_poll_interval,
                                 server_id=server_id, monitoring=monitoring,
                                 verify_keys=spec.signature_keys())
    routes, background = extension(registry, spec) if extension else ((), ())
    # ``enabled`` is settled by the CLI (from --host, --auth, --insecure-no-auth) before
    # the spec reaches the workers; None here means nobody asked for auth.
    auth = Authenticator(registry.tokens, spec.auth.value()) if spec.auth.enabled else None
    return create_app(repository, limits=spec.limits_value(), routes=routes,
                      background=background, auth=auth, body_limits=body_limits)


def spec_from_env() -> ServeSpec:
    """The options ``run`` handed to this worker process."""
    return ServeSpec.model_validate_json(os.environ[SPEC_ENV])


def app_from_env() -> ASGIApp:
    """uvicorn's factory in each worker process."""
    return build_app(spec_from_env())


@dataclass(frozen=True)
class TLSFiles:
    """A PEM certificate (chain) and its unencrypted private key, for HTTPS."""

    cert: str
    key: str


def run(spec: ServeSpec, *, host: str, port: int, workers: int = 1,
        log_level: str = "info", factory: str = DEFAULT_FACTORY,
        tls: TLSFiles | None = None) -> None:
    """Serve until SIGTERM/SIGINT; each worker's app comes from ``factory`` (an import
    path of a function returning the app, like ``app_from_env``); HTTPS with ``tls``."""
    os.environ[SPEC_ENV] = spec.model_dump_json()
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="modelport-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        _run_uvicorn(host, port, workers, log_level, factory, tls)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_uvicorn(host: str, port: int, workers: int, log_level: str, factory: str,
                 tls: TLSFiles | None) -> None:
    import uvicorn

    fast = importlib.util.find_spec("uvloop") is not None
    # uvicorn shuts down gracefully on SIGTERM, restores the handler it found, then
    # re-raises the signal. With the default handler found, that kills the process
    # (exit -15) after a clean drain; with this one, a drained shutdown exits 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop" if fast else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=False,  # modelport writes its own JSON access log
        log_level=log_level,
        timeout_graceful_shutdown=30,
        server_header=False,
        proxy_headers=False,
        ssl_certfile=tls.cert if tls else None,
        ssl_keyfile=tls.key if tls else None,
    )
