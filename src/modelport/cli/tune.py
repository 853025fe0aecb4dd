"""``modelport tune`` (run the ``tune:`` block of modelport.yaml) and ``modelport tune
report`` (a study's trials, importances and history plot).

Exit codes of ``tune``: 0 when at least one trial completed (the best is registered);
11 when no trial completed (nothing registered); 2 for an invalid tune block or a trial
that did not report the objective's metric; 3 for ``--resume`` of a study that does not
exist; 130 when interrupted (the study keeps its trials: run it again to resume).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from modelport.cli.output import info, print_json
from modelport.cli.pipeline import cancel_on_signals
from modelport.cli.state import state
from modelport.errors import InvalidInputError
from modelport.pipelines.fields import parse_duration
from modelport.pipelines.loader import DEFAULT_FILE, load_pipeline
from modelport.tuning.runner import TuneOptions, TuneOutcome, Tuner, TuneReporter, study_name

app = typer.Typer()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="The pipeline file.")]


def _quiet_optuna() -> None:
    # Optuna logs every trial at INFO and each failure with a traceback; the progress view
    # says the same once. --debug (root logger at DEBUG) shows Optuna's own log too.
    import optuna

    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    optuna.logging.set_verbosity(optuna.logging.DEBUG if debug else optuna.logging.ERROR)


@contextlib.contextmanager
def _cancel(function_trials: bool) -> Iterator[threading.Event]:
    # A command trial is stopped through the event (its process group gets SIGTERM); a
    # function runs in this process, so Ctrl-C must interrupt it as KeyboardInterrupt.
    if function_trials:
        yield threading.Event()
    else:
        with cancel_on_signals() as cancel:
            yield cancel


@app.callback(invoke_without_command=True)
def tune(
    ctx: typer.Context,
    file: FileOpt = Path(DEFAULT_FILE),
    trials: Annotated[int | None, typer.Option(
        "--trials", "-n", min=1, help="Trials the study should hold (default: tune.trials).")
    ] = None,
    timeout: Annotated[str | None, typer.Option(
        "--timeout", help="Start no trial after this long, e.g. 10m (default: tune.timeout).")
    ] = None,
    study: Annotated[str | None, typer.Option(
        "--study", help="Study name (default: tune.study, else the pipeline's name).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="The study must exist already (a re-run resumes it anyway).")] = False,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Sampler seed (default: tune.sampler.seed); give parallel processes "
                       "different seeds.")] = None,
    register: Annotated[bool, typer.Option(
        "--register/--no-register", help="Register the best trial's model at the end.")
    ] = True,
    keep_files: Annotated[bool, typer.Option(
        "--keep-files", help="Keep every trial's folder, not just the best one's.")] = False,
    stream: Annotated[bool | None, typer.Option(
        "--stream/--no-stream",
        help="A line per trial and the commands' output (default: when stderr is not a "
             "terminal).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tune the tune: block of modelport.yaml with Optuna; register the best trial."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        seconds = parse_duration(timeout) if timeout is not None else None
    except ValueError as exc:
        raise InvalidInputError(f"--timeout: {exc}") from None
    source = load_pipeline(file)
    spec = source.pipeline.tune
    if spec is None:
        raise InvalidInputError(f"{file} has no tune: block (see docs/tuning.md)")
    options = TuneOptions(trials=trials, timeout=seconds, study=study, resume=resume,
                          seed=seed, register=register, keep_files=keep_files)
    reg = state(ctx).registry()
    _quiet_optuna()
    streaming = stream if stream is not None else not sys.stderr.isatty()
    metric = spec.objective.metric
    from modelport.cli.tune_view import LiveTuneReporter, StreamTuneReporter

    with _cancel(spec.function is not None) as cancel:
        if streaming:
            outcome = _run(source, reg, options, StreamTuneReporter(metric), cancel)
        else:
            with LiveTuneReporter(metric) as live:
                outcome = _run(source, reg, options, live, cancel)
    _done(outcome, metric, as_json)


def _run(source: Any, reg: Any, options: TuneOptions, reporter: TuneReporter,
         cancel: threading.Event) -> TuneOutcome:
    return Tuner(source, reg, options, reporter=reporter, cancel=cancel).run()


def _done(outcome: TuneOutcome, metric: str, as_json: bool) -> None:
    from modelport.cli.tune_view import shown_params

    best = outcome.best
    assert best is not None  # the runner raises when no trial completed
    states: dict[str, int] = {}
    for t in outcome.trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    if as_json:
        print_json({"study": outcome.study, "ran": outcome.ran, "states": states,
                    "best": {"number": best.number, "value": best.value, "params": best.params},
                    "uri": outcome.version.uri if outcome.version else None,
                    "registered_now": outcome.registered_now, "note": outcome.note,
                    "interrupted": outcome.interrupted})
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    info(f"[green]✓[/] study [bold]{outcome.study}[/]: {len(outcome.trials)} trials ({counts}),"
         f" {outcome.ran} run now; best trial {best.number}: {metric}={best.value:.6g} "
         f"{shown_params(best.params, 200)}")
    if outcome.version is not None:
        how = "registered" if outcome.registered_now else "already registered as"
        info(f"{how} [bold]{outcome.version.uri}[/]")
    elif outcome.note:
        info(f"not registered: {outcome.note}")


@app.command()
def report(
    ctx: typer.Context,
    study: Annotated[str | None, typer.Argument(
        help="Study name (default: the one modelport.yaml's tune: block runs in).")] = None,
    file: FileOpt = Path(DEFAULT_FILE),
    html: Annotated[Path | None, typer.Option(
        "--html", help="Write the optimisation history (and importances) as HTML.")] = None,
    png: Annotated[Path | None, typer.Option(
        "--png", help="Write the optimisation history as PNG.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A study's trials, best trial, parameter importances; plots as HTML/PNG."""
    from modelport.tuning.report import build_report, load_study, write_html, write_png

    name = study
    if name is None:
        if not file.is_file():
            raise InvalidInputError(f"give a STUDY, or run where {file} is (or --file)")
        name = study_name(load_pipeline(file))
    reg = state(ctx).registry()
    _quiet_optuna()
    found = load_study(reg.settings.database_url, name)
    result = build_report(found, reg)
    if html is not None:
        write_html(found, html)
    if png is not None:
        write_png(found, png)
    if as_json:
        print_json(result.to_dict())
    else:
        from modelport.cli.tune_view import summary, trials_table

        trials_table(result)
        summary(result)
    for path in (html, png):
        if path is not None:
            info(f"wrote {path}")


__all__ = ["app"]
