"""A trial as a Python function, called in this process.

``function: module:callable`` names it; the module is imported with the pipeline's
folder first on ``sys.path`` (so ``train:fit`` is ``fit`` in ``train.py`` beside
``modelport.yaml``). It is called as ``fn(params)`` or, if it takes a second argument,
``fn(params, trial)`` with a ``TrialContext`` (``trial.report(step, value)`` for the
pruner, ``trial.number``, ``trial.optuna`` for anything else). It returns
``(model, metrics)``: a model ``modelport.log_model`` can store and a mapping of metric
name → number that holds the objective's metric. An exception fails the trial (the study
goes on); ``optuna.TrialPruned``, raised by ``report`` when the pruner says so, prunes it.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidInputError, ModelportError
from modelport.tuning.storage import PRUNED_AT
from modelport.tuning.types import TrialFailed, TrialRun

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)
TrialFunction = Callable[..., Any]


class TrialContext:
    """What a trial function may use besides its parameters."""

    def __init__(self, trial: optuna.Trial | None, params: dict[str, Any]) -> None:
        self._trial = trial
        self.params = params

    @property
    def number(self) -> int | None:
        """The trial's number in its study (None when refitting the best parameters)."""
        return self._trial.number if self._trial is not None else None

    @property
    def optuna(self) -> optuna.Trial | None:
        """Optuna's own trial object (None when refitting)."""
        return self._trial

    def report(self, step: int, value: float) -> None:
        """The objective's value after ``step``; raises ``optuna.TrialPruned`` when the
        pruner judges the trial unpromising (let it propagate)."""
        if self._trial is None:
            return
        import optuna

        self._trial.report(float(value), int(step))
        if self._trial.should_prune():
            self._trial.set_user_attr(PRUNED_AT, int(step))
            raise optuna.TrialPruned(f"pruned after step {step}")


def load_function(target: str, folder: Path) -> TrialFunction:
    """The callable ``module:name`` names, imported with ``folder`` on the path."""
    module_name, _, attr = target.partition(":")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInputError(f"function {target!r}: cannot import {module_name!r}: "
                                f"{exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InvalidInputError(f"function {target!r}: {module_name} has no callable "
                                f"{attr!r}")
    return fn  # type: ignore[no-any-return]


def _takes_context(fn: TrialFunction) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


def call_function(fn: TrialFunction, trial: optuna.Trial | None,
                  params: dict[str, Any]) -> TrialRun:
    """Call ``fn`` for one trial; raises TrialFailed (or ``optuna.TrialPruned``)."""
    import optuna

    try:
        out = fn(dict(params), TrialContext(trial, params)) if _takes_context(fn) \
            else fn(dict(params))
    except optuna.TrialPruned:
        raise
    except ModelportError as exc:
        raise TrialFailed(str(exc)) from None
    except Exception as exc:  # the user's code: any failure fails this trial only
        log.info("trial function failed", exc_info=True)
        raise TrialFailed(f"{type(exc).__name__}: {exc}"[:500]) from None
    if not (isinstance(out, tuple | list) and len(out) == 2 and isinstance(out[1], Mapping)):
        raise TrialFailed(f"the function returned {type(out).__name__}: it must return "
                          "(model, metrics), metrics a mapping of name → number")
    model, raw = out
    metrics: dict[str, float] = {}
    for key, value in raw.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TrialFailed(f"metric {key!r} is not a number: {value!r}") from None
        if not math.isfinite(number):
            raise TrialFailed(f"metric {key!r} is not finite: {value!r}")
        metrics[str(key)] = number
    return TrialRun(metrics=metrics, model=model)


__all__ = ["TrialContext", "TrialFunction", "call_function", "load_function"]
