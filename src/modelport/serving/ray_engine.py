"""``modelport serve --engine ray``: the same server as replicas of one Ray Serve deployment.

Each replica runs the app a ``--workers`` process runs, built by the same factory from the
same spec (handed over in the environment, as to uvicorn's workers), behind Ray Serve's
HTTP proxy on ``--host``/``--port``. A replica is a server like any other: it reconciles
from the registry's desired state and reports its traffic counters under its own server
id, so the rollout controller sees N replicas as a fleet of N servers and canary, shadow
and rollback need nothing new.

Batching stays modelport's batcher inside each replica rather than ``@serve.batch``: the
batcher counts rows (a 500-row request is cut to fit ``max_batch_size``), answers 503 on
a full queue, retries a failed batch request by request, and is fed by every protocol
module through one path; ``@serve.batch`` counts calls and would sit in front of the
protocol parsing, so each wire format would need its own batching.

Ray is started locally (its dashboard off) unless ``RAY_ADDRESS`` names a cluster to
join; nothing here imports Ray until the engine runs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.errors import ConfigurationError, InvalidInputError
from modelport.serving.middleware import ASGIApp
from modelport.serving.ray_replica import READY_WAIT_SECONDS, replica_builder

if TYPE_CHECKING:  # the flags are checked without loading the server's modules
    from modelport.serving.config import ServeSpec
    from modelport.serving.server import TLSFiles

log = logging.getLogger("modelport.serving")

APP_NAME = "modelport"
MAX_REPLICAS = 256
# Requests waiting in Ray's router for a free replica slot: bounded, so overload is a 503
# from Ray rather than a queue that grows without end. Slots are many (see _ongoing).
MAX_QUEUED_REQUESTS = 1024


@dataclass(frozen=True)
class Scale:
    """How many replicas: a fixed number, or a range Ray Serve autoscales within."""

    min_replicas: int
    max_replicas: int
    autoscale: bool = False

    def options(self, target_ongoing: float) -> dict[str, Any]:
        """The deployment options that say it (``target_ongoing``: in-flight requests per
        replica the autoscaler aims at)."""
        if not self.autoscale:
            return {"num_replicas": self.min_replicas}
        return {"autoscaling_config": {
            "min_replicas": self.min_replicas, "initial_replicas": self.min_replicas,
            "max_replicas": self.max_replicas, "target_ongoing_requests": target_ongoing}}

    def describe(self) -> str:
        """``2 replicas`` or ``1 to 4 replicas (autoscaled)``."""
        if not self.autoscale:
            return f"{self.min_replicas} replica{'s' if self.min_replicas != 1 else ''}"
        return f"{self.min_replicas} to {self.max_replicas} replicas (autoscaled)"


def parse_scale(replicas: int | None, autoscale: str | None) -> Scale:
    """``--replicas N`` or ``--autoscale MIN:MAX`` (one replica when neither is given);
    InvalidInputError saying what is wrong otherwise."""
    if replicas is not None and autoscale is not None:
        raise InvalidInputError("--replicas and --autoscale exclude each other: give a fixed "
                                "count (--replicas 2) or a range (--autoscale 1:4)")
    if autoscale is None:
        n = 1 if replicas is None else replicas
        if not 1 <= n <= MAX_REPLICAS:
            raise InvalidInputError(f"--replicas {n}: give 1 to {MAX_REPLICAS}")
        return Scale(n, n)
    found = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", autoscale)
    if found is None:
        raise InvalidInputError(f"--autoscale {autoscale!r}: expected MIN:MAX, two whole "
                                "numbers such as 1:4")
    low, high = int(found[1]), int(found[2])
    if low < 1:
        raise InvalidInputError(f"--autoscale {autoscale}: MIN must be at least 1 (a replica "
                                "is what keeps the models loaded and warm)")
    if low > high:
        raise InvalidInputError(f"--autoscale {autoscale}: MIN ({low}) is above MAX ({high})")
    if high > MAX_REPLICAS:
        raise InvalidInputError(f"--autoscale {autoscale}: MAX is at most {MAX_REPLICAS}")
    return Scale(low, high, autoscale=True)


def check_port(port: int) -> None:
    """InvalidInputError for a port Ray Serve's proxy cannot listen on as asked."""
    if port == 0:
        raise InvalidInputError("--engine ray needs a fixed --port: Ray Serve's proxy "
                                "cannot tell which port it would pick")


def replica_cpus(cluster_cpus: float, max_replicas: int) -> float:
    """Each replica's CPU reservation: the cluster's CPUs shared by the most replicas
    there may be, at most one, rounded down so the shares never add up past the cluster
    (``--replicas 2`` fits a 2-CPU Ray; ``--autoscale 1:4`` reserves 0.5 each)."""
    share = min(1.0, cluster_cpus / max_replicas)
    return max(0.01, math.floor(share * 100) / 100)


def target_ongoing(spec: ServeSpec) -> float:
    """Requests in flight per replica the autoscaler aims at: half the smallest batch, so
    a replica scales out while its batches still fill, before its queue grows."""
    sizes = [m.batching.max_batch_size for m in spec.models] or [64]
    return float(max(1, min(sizes) // 2))


def _ongoing(spec: ServeSpec) -> int:
    # Ray's own cap on requests per replica (default 5) would starve the batcher; it gets
    # as many as every model's queue and batch can hold, plus room for the other routes.
    return sum(m.batching.max_queue_rows + m.batching.max_batch_size for m in spec.models) + 64


class _Interrupted(Exception):
    """SIGTERM/SIGINT arrived while the application was still starting."""


class _Signals:
    """SIGTERM and SIGINT end the serve loop; while starting they interrupt the start."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.started = False

    def install(self) -> None:
        # Installed after ray.init, which sets a SIGTERM handler that exits 1.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        first = not self.stop.is_set()
        self.stop.set()
        if first and not self.started:
            raise _Interrupted


def _import_ray() -> tuple[Any, Any]:
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        raise ConfigurationError("--engine ray needs Ray Serve: pip install "
                                 f"'modelport[ray]' ({exc})") from None
    return ray, serve


def _start_ray(ray: Any, joined: bool) -> None:
    if joined:
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True,
                 configure_logging=False)
        return
    # address="local": a new instance, never one another user started on this machine.
    ray.init(address="local", include_dashboard=False, log_to_driver=True,
             configure_logging=False, _node_ip_address="127.0.0.1")


def _replica_env(spec: ServeSpec, joined: bool, metrics_dir: str | None) -> dict[str, str]:
    """The replicas' environment: the spec (as ``run`` hands it to uvicorn's workers), the
    shared metrics folder on one machine, and on a cluster this process's MODELPORT_*
    settings (local replicas inherit them)."""
    from modelport.serving.server import SPEC_ENV

    env = {SPEC_ENV: spec.model_dump_json()}
    if metrics_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    if joined:
        env.update({k: v for k, v in os.environ.items() if k.startswith("MODELPORT_")})
    return env


def _http_options(host: str, port: int, tls: TLSFiles | None) -> dict[str, Any]:
    options: dict[str, Any] = {"host": host, "port": port}
    if tls is not None:
        options.update(ssl_certfile=tls.cert, ssl_keyfile=tls.key)
    return options


def _application(serve: Any, spec: ServeSpec, scale: Scale, cpus: float, env: dict[str, str],
                 build: Callable[[], ASGIApp]) -> Any:
    quiet = {"log_level": "WARNING", "enable_access_log": False}  # modelport logs its own
    deployment = serve.deployment(
        serve.ingress(build)(),  # the ASGI app is all the replica is
        name=APP_NAME,
        ray_actor_options={"num_cpus": cpus, "runtime_env": {"env_vars": env}},
        max_ongoing_requests=_ongoing(spec),
        max_queued_requests=MAX_QUEUED_REQUESTS,
        graceful_shutdown_timeout_s=30.0,  # as uvicorn's drain
        graceful_shutdown_wait_loop_s=0.5,
        logging_config=quiet,
        **scale.options(target_ongoing(spec)),
    )
    return deployment.bind()


@contextlib.contextmanager
def _metrics_dir(local: bool, scale: Scale) -> Iterator[str | None]:
    """The folder the replicas on this machine share for /metrics, as ``--workers`` do
    (None on a cluster: a folder here is not there)."""
    existing = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not local or existing or scale.max_replicas < 2:
        yield existing if local else None
        return
    folder = tempfile.mkdtemp(prefix="modelport-metrics-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _refuse_taken_name(serve: Any) -> None:
    # On a shared cluster, serve.run under a name in use would replace that application.
    if APP_NAME in serve.status().applications:
        raise ConfigurationError(f"a Ray Serve application named {APP_NAME!r} already runs "
                                 "on the cluster at RAY_ADDRESS; stop it first")


def run_ray(spec: ServeSpec, *, host: str, port: int, scale: Scale,
            factory: Callable[[], ASGIApp], setup: Callable[[], None] | None = None,
            tls: TLSFiles | None = None, ready_wait: float = READY_WAIT_SECONDS) -> None:
    """Serve as a Ray Serve application until SIGTERM/SIGINT, then shut it down.

    ``factory`` builds each replica's app (it reads the spec from ``SPEC_ENV``, like
    uvicorn's factory); ``setup`` runs first in each replica (the CLI's logging). A Ray
    this process started is shut down with it; on a joined cluster only the application
    is deleted, and only if this process deployed it.
    """
    check_port(port)
    ray, serve = _import_ray()
    joined = bool(os.environ.get("RAY_ADDRESS"))
    signals = _Signals()
    deployed = False
    with _metrics_dir(not joined, scale) as metrics_dir:
        try:
            _start_ray(ray, joined)
            signals.install()
            cpus = replica_cpus(float(ray.cluster_resources().get("CPU", 1)), scale.max_replicas)
            serve.start(http_options=_http_options(host, port, tls),
                        logging_config={"log_level": "WARNING", "enable_access_log": False})
            if joined:
                _refuse_taken_name(serve)
            app = _application(serve, spec, scale, cpus, _replica_env(spec, joined, metrics_dir),
                               replica_builder(factory, setup, ready_wait))
            deployed = True
            serve.run(app, name=APP_NAME, route_prefix="/")
            signals.started = True
            log.info("Ray Serve: modelport on %s://%s:%d, %s (%g CPU each)",
                     "https" if tls else "http", host, port, scale.describe(), cpus)
            while not signals.stop.wait(0.5):
                pass
        except _Interrupted:
            pass
        except (ConfigurationError, InvalidInputError):
            raise
        except Exception as exc:  # Ray's own errors: one line, the cause kept for --debug
            raise ConfigurationError(f"Ray Serve could not start the application: "
                                     f"{_first_line(exc)}") from exc
        finally:
            _shutdown(ray, serve, joined=joined, deployed=deployed)


def _shutdown(ray: Any, serve: Any, *, joined: bool, deployed: bool) -> None:
    """Delete the application (its replicas drain), then Serve and Ray if they are ours."""
    if not ray.is_initialized():
        return
    try:
        if not joined:
            serve.shutdown()
        elif deployed:
            serve.delete(APP_NAME)
    except Exception as exc:  # Ray is going away anyway: say so, do not hide the exit
        log.warning("Ray Serve shutdown: %s", _first_line(exc))
    finally:
        ray.shutdown()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


__all__ = ["APP_NAME", "Scale", "check_port", "parse_scale", "replica_cpus", "run_ray",
           "target_ongoing"]
