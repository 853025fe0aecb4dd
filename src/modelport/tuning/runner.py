"""``modelport tune``: run a study's trials with Optuna, then register the best one.

A study is named (``--study``, else the block's ``study:``, else the pipeline's name) and
lives in the registry's database, so running again with the same name resumes it: the
trials done are kept, those a killed process left running are marked failed, and trials
are run until the study holds ``trials`` of them (interrupted ones do not count).
Several processes may tune one study at once (on PostgreSQL); each stops when the study
is full, so the total may exceed the budget by at most one trial per extra process.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelport.errors import (
    ConfigurationError,
    InvalidInputError,
    ModelportError,
    NotFoundError,
    TrialsFailedError,
)
from modelport.pipelines.gitinfo import git_commit
from modelport.pipelines.loader import PipelineFile
from modelport.pipelines.tunespec import TuneSpec
from modelport.tuning import storage as st
from modelport.tuning.command import run_command
from modelport.tuning.function import TrialFunction, call_function, load_function
from modelport.tuning.register import Origin, register_trial, registered
from modelport.tuning.space import make_pruner, make_sampler, suggest
from modelport.tuning.types import (
    MetricMissingError,
    TrialFailed,
    TrialRun,
    TrialSettings,
    TuningCancelled,
)
from modelport.uri import validate_name

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from modelport.client import Registry
    from modelport.registry.entities import ModelVersion

log = logging.getLogger(__name__)


class TuneReporter(Protocol):
    """What a tuning run tells its display (the CLI's progress bar, a test's recorder)."""

    def study_opened(self, study: str, done: int, target: int, interrupted: list[int]) -> None:
        """The study is open: ``done`` of ``target`` trials counted so far."""

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        """Trial ``number`` starts with ``params``."""

    def trial_output(self, number: int, stream: str, line: str) -> None:
        """One line of a command trial's output."""

    def trial_finished(self, trial: FrozenTrial, done: int, target: int,
                       best: FrozenTrial | None) -> None:
        """Trial ``trial`` ended (complete, pruned or failed)."""


class NullTuneReporter:
    """Shows nothing."""

    def study_opened(self, study: str, done: int, target: int, interrupted: list[int]) -> None:
        """Nothing."""

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        """Nothing."""

    def trial_output(self, number: int, stream: str, line: str) -> None:
        """Nothing."""

    def trial_finished(self, trial: FrozenTrial, done: int, target: int,
                       best: FrozenTrial | None) -> None:
        """Nothing."""


@dataclass(frozen=True)
class TuneOptions:
    """Command-line overrides of the tune block, and what to do at the end."""

    trials: int | None = None
    timeout: float | None = None
    study: str | None = None
    resume: bool = False  # the study must exist already
    seed: int | None = None
    register: bool = True
    keep_files: bool = False


@dataclass
class TuneOutcome:
    """How a tuning run ended."""

    study: str
    trials: list[FrozenTrial]
    ran: int
    best: FrozenTrial | None = None
    version: ModelVersion | None = None
    registered_now: bool = False
    note: str = ""
    interrupted: list[int] = field(default_factory=list)


def study_name(source: PipelineFile, override: str | None = None) -> str:
    """The study a file's tune block runs in."""
    tune = source.pipeline.tune
    return override or (tune.study if tune and tune.study else source.pipeline.name)


class Tuner:
    """Tunes one pipeline file's ``tune:`` block against one registry."""

    def __init__(self, source: PipelineFile, registry: Registry, options: TuneOptions | None = None,
                 *, reporter: TuneReporter | None = None,
                 cancel: threading.Event | None = None) -> None:
        if source.pipeline.tune is None:
            raise InvalidInputError(f"{source.path} has no tune: block")
        self.source = source
        self.spec: TuneSpec = source.pipeline.tune
        self.registry = registry
        self.options = options or TuneOptions()
        self.reporter: TuneReporter = reporter or NullTuneReporter()
        self.cancel = cancel or threading.Event()
        self.name = validate_name(study_name(source, self.options.study), "study name")
        self.target = self.options.trials or self.spec.trials
        self.fn: TrialFunction | None = None
        self._kept: tuple[int, float, TrialRun] | None = None  # this process's best model
        self._ran = 0

    def run(self) -> TuneOutcome:
        """Run trials until the study is full (or the timeout), then register the best."""
        try:
            import optuna
        except ImportError:
            raise ConfigurationError("tuning needs Optuna: pip install 'modelport[tuning]'"
                                     ) from None
        if self.spec.function:
            self.fn = load_function(self.spec.function, self.source.folder)
        study = self._open(optuna)
        try:
            interrupted = st.fail_interrupted(study)
            trials = study.get_trials(deepcopy=False)
            seed = self.options.seed if self.options.seed is not None else self.spec.sampler.seed
            # Offset by the trials already there: a resumed study must not replay the
            # first run's parameters.
            study.sampler = make_sampler(self.spec.sampler,
                                         None if seed is None else seed + len(trials))
            done = st.counted(t for t in trials if t.state.is_finished())
            self.reporter.study_opened(self.name, done, self.target, interrupted)
            if st.counted(trials) < self.target:
                self._optimize(optuna, study, self.target - st.counted(trials))
            return self._finish(optuna, study, interrupted)
        except optuna.exceptions.StorageInternalError as exc:
            raise ModelportError(f"the tuning storage failed: {exc}") from None

    def _open(self, optuna: Any) -> optuna.Study:
        storage = st.open_storage(self.registry.settings.database_url)
        sampler = make_sampler(self.spec.sampler, None)
        pruner = make_pruner(self.spec.pruner)
        direction = self.spec.objective.direction
        if self.options.resume:
            try:
                study = optuna.load_study(study_name=self.name, storage=storage,
                                          sampler=sampler, pruner=pruner)
            except KeyError:
                raise NotFoundError(f"no study {self.name!r} to resume (run without "
                                    "--resume to start it)") from None
        else:
            study = optuna.create_study(storage=storage, study_name=self.name,
                                        direction=direction, sampler=sampler, pruner=pruner,
                                        load_if_exists=True)
        self._check_study(study)
        return study

    def _check_study(self, study: optuna.Study) -> None:
        """A resumed study must judge trials the way the tune block does."""
        spec = self.spec.objective
        if len(study.directions) != 1 or study.direction.name.lower() != spec.direction:
            raise InvalidInputError(
                f"study {self.name!r} exists and does not {spec.direction} one objective: "
                "give the study another name (--study or tune.study)")
        attrs = study.user_attrs
        for key, value in (("modelport.metric", spec.metric), ("modelport.model", self.spec.model)):
            if key in attrs and attrs[key] != value:
                raise InvalidInputError(
                    f"study {self.name!r} was started with {key.split('.')[1]} "
                    f"{attrs[key]!r}, the tune block says {value!r}: give the study another "
                    "name (--study or tune.study)")
            if key not in attrs:
                study.set_user_attr(key, value)

    def _optimize(self, optuna: Any, study: optuna.Study, budget: int) -> None:
        settings = TrialSettings(
            folder=self.source.folder, study=self.name,
            work=self.registry.settings.home / "tuning" / self.name, env=self._env(),
            cancel=self.cancel, on_line=self.reporter.trial_output)
        timeout = self.options.timeout or self.spec.timeout

        def objective(trial: optuna.Trial) -> float:
            return self._trial(optuna, trial, settings)

        def after(study: optuna.Study, trial: FrozenTrial) -> None:
            st.fail_interrupted(study)
            trials = study.get_trials(deepcopy=False)
            if st.counted(trials) >= self.target or self.cancel.is_set():
                study.stop()
            done = st.counted(t for t in trials if t.state.is_finished())
            self.reporter.trial_finished(trial, done, self.target, _best(study))

        study.optimize(objective, n_trials=budget, timeout=timeout, catch=(TrialFailed,),
                       callbacks=[after], gc_after_trial=False, show_progress_bar=False)
        if self.cancel.is_set():
            raise TuningCancelled(f"cancelled: study {self.name!r} keeps its trials; run "
                                  "the same command again to resume it")

    def _trial(self, optuna: Any, trial: optuna.Trial, settings: TrialSettings) -> float:
        for key, value in st.this_process().items():
            trial.set_user_attr(key, value)
        self._ran += 1
        try:
            if self.cancel.is_set():
                raise TuningCancelled("cancelled before the trial started")
            params = suggest(trial, self.spec.space)
            folder = settings.trial_dir(trial.number)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            self.reporter.trial_started(trial.number, params)
            if self.fn is not None:
                run = call_function(self.fn, trial, params)
            else:
                run = run_command(self.spec, trial, params, settings)
            value = self._value(run, trial.number)
        except optuna.TrialPruned:
            raise
        except TuningCancelled as exc:
            _interrupted(trial, str(exc))
            raise
        except KeyboardInterrupt:  # Ctrl-C inside a function trial
            _interrupted(trial, "interrupted")
            raise TuningCancelled(f"interrupted: study {self.name!r} keeps its trials; run "
                                  "the same command again to resume it") from None
        except BaseException as exc:
            trial.set_user_attr(st.ERROR, (str(exc) or type(exc).__name__)[:1000])
            raise
        trial.set_user_attr(st.METRICS, run.metrics)
        if run.model_file is not None:
            trial.set_user_attr(st.MODEL_FILE, str(run.model_file))
        if run.model is not None and self._better(value):
            self._kept = (trial.number, value, run)
        return value

    def _value(self, run: TrialRun, number: int) -> float:
        metric = self.spec.objective.metric
        if metric not in run.metrics:
            reported = ", ".join(sorted(run.metrics)) or "none"
            raise MetricMissingError(
                f"{self.source.path}: tune.objective.metric is {metric!r} but trial {number} "
                f"reported no such metric (it reported: {reported})")
        return run.metrics[metric]

    def _better(self, value: float) -> bool:
        if self._kept is None:
            return True
        if self.spec.objective.direction == "maximize":
            return value > self._kept[1]
        return value < self._kept[1]

    def _env(self) -> dict[str, str]:
        settings = self.registry.settings
        env = {**self.source.pipeline.env,
               "MODELPORT_HOME": str(settings.home), "MODELPORT_DATABASE_URL":
               settings.database_url, "MODELPORT_ARTIFACTS": settings.artifacts,
               "MODELPORT_PIPELINE": self.source.pipeline.name}
        commit = git_commit(self.source.folder)
        if commit:
            env["MODELPORT_GIT_COMMIT"] = commit
        return env

    def _finish(self, optuna: Any, study: optuna.Study, interrupted: list[int]) -> TuneOutcome:
        trials = study.get_trials()
        outcome = TuneOutcome(self.name, trials, self._ran, interrupted=interrupted)
        outcome.best = _best(study)
        if outcome.best is None:
            failed = [t for t in trials if t.state.name == "FAIL" and st.ERROR in t.user_attrs]
            last = f" (last error: {failed[-1].user_attrs[st.ERROR]})" if failed else ""
            raise TrialsFailedError(f"no trial of study {self.name!r} completed "
                                    f"({len(trials)} trials){last}; nothing registered")
        if self.options.register:
            outcome.version, outcome.registered_now, outcome.note = self._register(outcome.best)
        else:
            outcome.note = "not registered (--no-register)"
        if not self.options.keep_files:
            _clean(self.registry.settings.home / "tuning" / self.name, trials, outcome.best)
        return outcome

    def _register(self, best: FrozenTrial) -> tuple[ModelVersion | None, bool, str]:
        found = registered(self.registry, self.spec.model, self.name, best.number)
        if found is not None:
            return found, False, "already registered"
        origin = Origin(self.source.pipeline.name, git_commit(self.source.folder),
                        self.source.folder)
        attrs = best.user_attrs
        where = f"pid {attrs.get(st.PID)} on {attrs.get(st.HOST)}"
        if self.fn is None:
            path = attrs.get(st.MODEL_FILE)
            if not path or not os.path.isfile(path):
                return None, False, (f"trial {best.number}'s model file {path} is not on this "
                                     f"machine (it ran as {where}); run `modelport tune` "
                                     "there to register it")
            version, new = register_trial(self.registry, self.spec, self.name, best, origin,
                                          model_file=path)
            return version, new, ""
        if self._kept is not None and self._kept[0] == best.number:
            version, new = register_trial(self.registry, self.spec, self.name, best, origin,
                                          model=self._kept[2].model)
            return version, new, ""
        if not st.process_gone(attrs):
            return None, False, (f"trial {best.number} ran in another process ({where}), "
                                 "which registers it when it ends")
        # Its process ended without registering it and the model died with it: train
        # the best parameters again (a seeded function gives the same model).
        run = call_function(self.fn, None, dict(best.params))
        version, new = register_trial(self.registry, self.spec, self.name, best, origin,
                                      model=run.model, metrics=run.metrics, refit=True)
        return version, new, "refit: the best trial's process had ended"


def _interrupted(trial: optuna.Trial, message: str) -> None:
    trial.set_user_attr(st.ERROR, message)
    trial.set_user_attr(st.INTERRUPTED, True)


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def _clean(work: Path, trials: list[FrozenTrial], best: FrozenTrial) -> None:
    """Remove the folders of finished trials other than the best (a big model per
    trial adds up); running trials, maybe another process's, keep theirs."""
    for t in trials:
        if t.state.is_finished() and t.number != best.number:
            shutil.rmtree(work / str(t.number), ignore_errors=True)


__all__ = ["NullTuneReporter", "TuneOptions", "TuneOutcome", "TuneReporter", "Tuner",
           "study_name"]
