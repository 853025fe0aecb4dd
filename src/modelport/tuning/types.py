"""What one trial produces and the ways it can end, shared by command and function trials."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError, ModelportError

LineSink = Callable[[int, str, str], None]  # (trial number, "stdout"|"stderr", line)


@dataclass
class TrialRun:
    """A trial that ran to its end: its metrics and its model (a file, or an object)."""

    metrics: dict[str, float]
    model_file: Path | None = None
    model: Any = None


class TrialFailed(ModelportError):
    """This trial failed (its command exited non-zero, timed out, wrote no model...);
    it is recorded as failed and the study goes on."""


class TuningCancelled(ModelportError):
    """Ctrl-C or SIGTERM: the running trial was stopped and the study left resumable."""

    exit_code = 130


class MetricMissingError(InvalidInputError):
    """A trial ended well but did not report the objective's metric: a mistake in the
    tune block or the command, so the study stops at once."""


@dataclass
class TrialSettings:
    """What every trial of one ``modelport tune`` run shares."""

    folder: Path  # where the pipeline file is: commands run here, relative paths start here
    study: str
    work: Path  # each trial's own folder is work/<number>
    env: dict[str, str] = field(default_factory=dict)  # pipeline env + the registry's
    cancel: threading.Event = field(default_factory=threading.Event)
    on_line: LineSink | None = None

    def trial_dir(self, number: int) -> Path:
        """The (empty) folder of trial ``number``."""
        return self.work / str(number)


class AnyEvent(threading.Event):
    """Set when it is set itself or any of ``others`` is (one trial's stop, or the whole
    run's cancel): what ``run_process`` polls."""

    def __init__(self, *others: threading.Event) -> None:
        super().__init__()
        self._others = others

    def is_set(self) -> bool:
        """Whether this or any other event is set."""
        return super().is_set() or any(o.is_set() for o in self._others)


__all__ = ["AnyEvent", "LineSink", "MetricMissingError", "TrialFailed", "TrialRun",
           "TrialSettings", "TuningCancelled"]
