"""A trial as a train command: parameters in (environment, ``${params.NAME}``, optional
``--NAME=VALUE`` arguments), a model file and metrics out.

The command runs in the pipeline's folder like a pipeline's train step (same process
handling: its own process group, ``trial_timeout``, stopped on Ctrl-C). Its metrics come
from ``metrics_file`` (the register step's convention) merged with
``modelport:metric`` lines; ``modelport:report`` lines feed the pruner (see
``modelport.tuning.protocol``). The model file is copied into the trial's own folder,
so the best trial's model is still there when the study ends (or resumes).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidInputError
from modelport.pipelines.process import ProcessResult, run_process
from modelport.pipelines.refs import substitute
from modelport.pipelines.runner import last_words
from modelport.pipelines.steps import read_metrics
from modelport.pipelines.tunespec import TuneSpec
from modelport.tuning import protocol
from modelport.tuning.storage import PRUNED_AT
from modelport.tuning.types import (
    AnyEvent,
    TrialFailed,
    TrialRun,
    TrialSettings,
    TuningCancelled,
)

if TYPE_CHECKING:
    import optuna


class _Watcher:
    """Reads the command's stdout as it comes: metrics, and reports for the pruner."""

    def __init__(self, trial: optuna.Trial, settings: TrialSettings) -> None:
        self.trial = trial
        self.settings = settings
        self.metrics: dict[str, float] = {}
        self.problem: str | None = None
        self.pruned_at: int | None = None
        self.stop = threading.Event()

    def line(self, stream: str, text: str) -> None:
        if self.settings.on_line is not None:
            self.settings.on_line(self.trial.number, stream, text)
        if stream != "stdout" or self.stop.is_set():
            return
        try:
            parsed = protocol.parse_line(text)
        except protocol.ProtocolError as exc:
            self.problem = str(exc)
            self.stop.set()
            return
        if parsed is None:
            return
        kind, value = parsed
        if kind == "metric":
            self.metrics.update(value)
            return
        step, number = value
        self.trial.report(number, step)
        if self.trial.should_prune():
            self.pruned_at = step
            self.stop.set()


def run_command(spec: TuneSpec, trial: optuna.Trial, params: dict[str, Any],
                settings: TrialSettings) -> TrialRun:
    """Run one trial's command; raises TrialFailed, ``optuna.TrialPruned`` or
    TuningCancelled when it does not end well."""
    import optuna

    trial_dir = settings.trial_dir(trial.number)
    values = {"trial": {"dir": str(trial_dir), "number": str(trial.number)},
              "study": {"name": settings.study},
              "params": {k: protocol.as_text(v) for k, v in params.items()}}
    argv = [substitute(a, values) for a in spec.command_argv or []]
    if spec.args:
        argv += [f"--{k}={protocol.as_text(v)}" for k, v in params.items()]
    model_path = _path(settings.folder, substitute(spec.file or "", values))
    metrics_path = (_path(settings.folder, substitute(spec.metrics_file, values))
                    if spec.metrics_file else None)
    before = {p: _stamp(p) for p in (model_path, metrics_path) if p is not None}
    watcher = _Watcher(trial, settings)
    result = _run(argv, spec, trial, params, settings, values, watcher)
    if watcher.pruned_at is not None:
        trial.set_user_attr(PRUNED_AT, watcher.pruned_at)
        raise optuna.TrialPruned(f"pruned after step {watcher.pruned_at}")
    if result.cancelled and settings.cancel.is_set():
        raise TuningCancelled(f"cancelled: study {settings.study!r} keeps its trials; run "
                              "the same command again to resume it")
    if watcher.problem:
        raise TrialFailed(f"stopped: {watcher.problem}")
    if result.timed_out:
        raise TrialFailed(f"timed out after {result.seconds:.1f} s")
    rc = result.returncode
    if rc != 0:
        died = f"killed by signal {-rc}" if rc is not None and rc < 0 else f"exited with {rc}"
        last = last_words(result.tail)
        raise TrialFailed(died + (f": {last}" if last else ""))
    metrics: dict[str, float] = {}
    if metrics_path is not None:
        _written(metrics_path, before[metrics_path], "metrics file")
        try:
            metrics = read_metrics(metrics_path)
        except InvalidInputError as exc:
            raise TrialFailed(str(exc)) from None
    metrics.update(watcher.metrics)
    _written(model_path, before[model_path], "model file")
    return TrialRun(metrics=metrics, model_file=_keep(model_path, trial_dir))


def _run(argv: list[str], spec: TuneSpec, trial: optuna.Trial, params: dict[str, Any],
         settings: TrialSettings, values: dict[str, dict[str, str]],
         watcher: _Watcher) -> ProcessResult:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **settings.env,
           **{k: substitute(v, values) for k, v in spec.env.items()},
           **protocol.param_env(params),
           protocol.TRIAL_ENV: str(trial.number),
           protocol.TRIAL_DIR_ENV: values["trial"]["dir"],
           protocol.STUDY_ENV: settings.study}
    try:
        return run_process(argv, cwd=settings.folder, env=env, timeout=spec.trial_timeout,
                           cancel=AnyEvent(watcher.stop, settings.cancel),
                           on_line=watcher.line)
    except OSError as exc:
        raise TrialFailed(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None


def _path(folder: Path, text: str) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else folder / p


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _written(path: Path, before: tuple[int, int, int] | None, what: str) -> None:
    """The command must have (re)written ``path``: a file left by an earlier trial would
    pass off that trial's result as this one's."""
    now = _stamp(path)
    if now is None:
        raise TrialFailed(f"the command wrote no {what} {path}")
    if now == before:
        raise TrialFailed(f"the {what} {path} was not rewritten by this trial (it is "
                          "an earlier one's): write it to ${trial.dir}")


def _keep(model: Path, trial_dir: Path) -> Path:
    """The model file inside the trial's folder (copied there if written elsewhere)."""
    if model.resolve().parent == trial_dir.resolve():
        return model
    kept = trial_dir / model.name
    try:
        shutil.copy2(model, kept)
    except OSError as exc:
        raise TrialFailed(f"cannot keep the model file {model}: {exc}") from None
    return kept


__all__ = ["run_command"]
