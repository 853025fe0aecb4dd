"""Entry point: global options, sub-command wiring, and turning errors into exit codes."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from modelport import __version__
from modelport.cli import audit as audit_cli
from modelport.cli import build as build_cli
from modelport.cli import datasets as datasets_cli
from modelport.cli import db as db_cli
from modelport.cli import keys as keys_cli
from modelport.cli import models as models_cli
from modelport.cli import monitor as monitor_cli
from modelport.cli import pipeline as pipeline_cli
from modelport.cli import rollout as rollout_cli
from modelport.cli import tokens as tokens_cli
from modelport.cli import tune as tune_cli
from modelport.cli.convert import convert
from modelport.cli.demo import demo
from modelport.cli.gate import gate
from modelport.cli.lineage import lineage
from modelport.cli.output import error
from modelport.cli.predict import predict
from modelport.cli.serve import serve
from modelport.cli.state import State
from modelport.errors import ModelportError

app = typer.Typer(
    name="modelport",
    help="Continuous delivery for machine-learning models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_cli.app, name="models", help="Register, inspect, alias and delete models.")
app.add_typer(db_cli.app, name="db", help="Registry database maintenance.")
app.add_typer(datasets_cli.app, name="datasets",
              help="Versioned, content-addressed datasets: register, list, show, diff.")
app.add_typer(rollout_cli.app, name="rollout",
              help="Progressive delivery: start, watch, promote, pause, abort rollouts.")
app.add_typer(pipeline_cli.app, name="pipeline",
              help="Run modelport.yaml pipelines and read their recorded runs.")
app.add_typer(monitor_cli.app, name="monitor",
              help="Watch deployed models: realized metrics, prediction-log retention.")
app.add_typer(audit_cli.app, name="audit",
              help="The tamper-evident record of every change: list, verify, what served "
                   "when.")
app.add_typer(keys_cli.app, name="keys",
              help="Ed25519 key pairs for signing versions (models sign, verify).")
app.add_typer(tokens_cli.app, name="tokens",
              help="API tokens for modelport serve: create (shown once), list, revoke.")
app.add_typer(build_cli.app, name="build",
              help="Pack a version for a deployment target: docker, k8s (and KServe), edge.")
app.add_typer(tune_cli.app, name="tune",
              help="Tune the tune: block of modelport.yaml with Optuna (report: its trials).")
app.command("init")(pipeline_cli.init)
app.command()(predict)
app.command()(demo)
app.command()(serve)
app.command()(rollout_cli.rollback)
app.command()(rollout_cli.controller)
app.command()(gate)
app.command()(convert)
app.command()(lineage)
app.command()(monitor_cli.feedback)

_debug = False


def _version(value: bool) -> None:
    if value:
        print(f"modelport {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="MODELPORT_HOME", help="Registry home folder."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    global _debug
    _debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = State(home=home)


def main() -> None:
    """Run the CLI; a modelport error becomes one line on stderr and its exit code."""
    try:
        app(prog_name="modelport", standalone_mode=True)
    except ModelportError as exc:
        if _debug:
            traceback.print_exc()
        error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
