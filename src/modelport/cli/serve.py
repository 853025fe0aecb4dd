"""``modelport serve``: the inference server."""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelport.cli.state import state
from modelport.config import Settings

if TYPE_CHECKING:
    from modelport.serving.config import ServeSpec
    from modelport.serving.ray_engine import Scale
    from modelport.serving.server import TLSFiles


def _configure_logging(level: str) -> None:
    # JSON access lines go to stderr as they are; everything else keeps a short prefix.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("modelport.access")
    access.handlers[:] = [handler]
    access.propagate = False
    access.setLevel(logging.INFO if level.lower() in ("debug", "info") else logging.WARNING)
    logging.getLogger("modelport.serving").setLevel(level.upper())


def serve(
    ctx: typer.Context,
    model_uris: Annotated[list[str] | None, typer.Argument(
        metavar="[MODEL_URI]...", help="models:/iris@champion (served as 'iris'), iris/3, ...")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8080,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, max=64, help="Processes sharing the port (default 1).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="serve.yaml")] = None,
    trusted: Annotated[bool, typer.Option(
        "--trusted", help="Allow the MODEL_URI models to run code (pickle, PythonModel).")
    ] = False,
    max_body_bytes: Annotated[int | None, typer.Option("--max-body-bytes")] = None,
    max_rows: Annotated[int | None, typer.Option("--max-rows")] = None,
    request_timeout: Annotated[float | None, typer.Option("--request-timeout")] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    no_controller: Annotated[bool, typer.Option(
        "--no-controller", help="Do not run the rollout controller in this process.")
    ] = False,
    no_dashboard: Annotated[bool, typer.Option(
        "--no-dashboard", help="Do not serve the web dashboard at /dashboard.")
    ] = False,
    alerts: Annotated[Path | None, typer.Option(
        "--alerts", help="Alert rules kept apart from serve.yaml (alerts.yaml format: "
                         "endpoints: {NAME: [rules]}), evaluated with serve.yaml's.")
    ] = None,
    auth: Annotated[bool, typer.Option(
        "--auth", help="Require bearer tokens on loopback too (always on for other "
                       "addresses).")] = False,
    insecure_no_auth: Annotated[bool, typer.Option(
        "--insecure-no-auth", help="Serve a non-loopback address WITHOUT authentication.")
    ] = False,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", help="PEM certificate (chain): serve HTTPS. With --tls-key.")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        "--tls-key", help="PEM private key (unencrypted) of --tls-cert.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="local (uvicorn processes) or ray (replicas of a Ray Serve "
                         "deployment behind its HTTP proxy; RAY_ADDRESS joins a cluster).")
    ] = "local",
    replicas: Annotated[int | None, typer.Option(
        "--replicas", help="With --engine ray: this many replicas (default 1).")] = None,
    autoscale: Annotated[str | None, typer.Option(
        "--autoscale", metavar="MIN:MAX",
        help="With --engine ray: Ray Serve scales between MIN and MAX replicas.")] = None,
) -> None:
    """Serve models over OIP/KServe V2, MLflow, KServe V1 and /predict."""
    from modelport.cli.alerting import serve_rules, start_alerter
    from modelport.serving.config import load_spec
    from modelport.serving.server import TLSFiles, run

    scale = _engine_scale(engine, port, workers, replicas, autoscale)  # before anything starts
    st = state(ctx)
    settings = st.settings()
    spec = load_spec(config, model_uris or [], trusted=trusted, overrides={
        "max_body_bytes": max_body_bytes, "max_rows": max_rows,
        "request_timeout": request_timeout,
    })
    spec = spec.model_copy(update={"home": str(settings.home),
                                   "database_url": settings.database_url})
    if no_dashboard:
        spec = spec.model_copy(update={"dashboard": spec.dashboard.model_copy(
            update={"enabled": False})})
    rules = serve_rules(spec, alerts)  # every rule checked before anything starts
    tls = _tls(tls_cert, tls_key)
    registry = st.registry()  # open (and migrate) once here, so workers never race on it
    spec = _settle_auth(spec, host, auth=auth, insecure=insecure_no_auth,
                        has_active=registry.tokens.has_active, tls=tls is not None)
    _configure_logging(log_level)
    stop_controller = None if no_controller else _start_controller(settings)
    stop_alerter = start_alerter(settings, spec, rules)
    try:
        if scale is not None:
            _run_ray(spec, host, port, scale, log_level, TLSFiles(*tls) if tls else None)
        else:
            run(spec, host=host, port=port, workers=workers or 1, log_level=log_level,
                factory=_factory(spec), tls=TLSFiles(*tls) if tls else None)
    finally:
        for stop in (stop_alerter, stop_controller):
            if stop is not None:
                stop()


def _engine_scale(engine: str, port: int, workers: int | None, replicas: int | None,
                  autoscale: str | None) -> Scale | None:
    """None for the local engine; for Ray, the replicas asked for. InvalidInputError for
    flags that do not go together."""
    from modelport.errors import InvalidInputError
    from modelport.serving.ray_engine import check_port, parse_scale

    if engine == "local":
        for flag, value in (("--replicas", replicas), ("--autoscale", autoscale)):
            if value is not None:
                raise InvalidInputError(f"{flag} needs --engine ray (the local engine's "
                                        "processes are --workers)")
        return None
    if engine != "ray":
        raise InvalidInputError(f"--engine {engine!r}: use local or ray")
    if workers is not None:
        raise InvalidInputError("--workers is for the local engine: with --engine ray give "
                                "--replicas N or --autoscale MIN:MAX")
    check_port(port)
    return parse_scale(replicas, autoscale)


def _run_ray(spec: ServeSpec, host: str, port: int, scale: Scale, log_level: str,
             tls: TLSFiles | None) -> None:
    """Replicas of one Ray Serve deployment, each the app a --workers process runs
    (the control plane and dashboard included), each logging as this process does."""
    from modelport.control.factory import app_from_env
    from modelport.serving.ray_engine import run_ray
    run_ray(spec, host=host, port=port, scale=scale, factory=app_from_env,
            setup=functools.partial(_configure_logging, log_level), tls=tls)


def _tls(cert: Path | None, key: Path | None) -> tuple[str, str] | None:
    from modelport.serving.exposure import check_tls

    return check_tls(cert, key)


def _settle_auth(spec: ServeSpec, host: str, *, auth: bool, insecure: bool,
                 has_active: Callable[[], bool], tls: bool) -> ServeSpec:
    """The spec with ``auth.enabled`` decided (the workers only read it), or a
    ConfigurationError when the server must not start."""
    from modelport.cli.output import info
    from modelport.serving.exposure import is_loopback, require_tokens, settle_auth

    decision = settle_auth(spec.auth.enabled, host, auth=auth, insecure=insecure)
    require_tokens(decision, decision.enabled and has_active())
    if not decision.enabled and not is_loopback(host):
        info(f"[bold red]warning:[/] serving {host} WITHOUT authentication "
             "(--insecure-no-auth): anyone who can reach it may call every model")
    elif decision.enabled and not tls and not is_loopback(host):
        info("[yellow]warning:[/] tokens cross the network in clear text: serve HTTPS "
             "with --tls-cert/--tls-key, or put a TLS proxy in front")
    return spec.model_copy(update={"auth": spec.auth.model_copy(
        update={"enabled": decision.enabled})})


def _factory(spec: ServeSpec) -> str:
    """The worker app factory: the server with the control plane under /api/ (refusing
    every request unless auth is on) and the dashboard unless it is turned off."""
    from modelport.control.factory import FACTORY

    return FACTORY


def _start_controller(settings: Settings) -> Callable[[], None]:
    """The rollout controller on a thread of this (main) process; its lease keeps it
    idle while another controller acts. Returns what stops it cleanly."""
    from modelport.client import Registry
    from modelport.rollout.controller import Controller

    registry = Registry(settings=settings)
    controller = Controller(registry)
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True,
                              name="rollout-controller")
    thread.start()

    def _stop() -> None:
        stop.set()
        thread.join(timeout=5)
        registry.close()

    return _stop
