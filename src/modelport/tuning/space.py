"""The ``tune:`` block's search space, sampler and pruner as Optuna objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport.pipelines.tunespec import ParamSpec, PrunerSpec, SamplerSpec

if TYPE_CHECKING:
    import optuna


def suggest(trial: optuna.Trial, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """One value per parameter of ``space``, chosen by the study's sampler."""
    values: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "categorical":
            assert p.choices is not None
            values[name] = trial.suggest_categorical(name, p.choices)
            continue
        assert p.low is not None and p.high is not None
        if p.type == "int":
            step = int(p.step) if p.step is not None else 1
            values[name] = trial.suggest_int(name, int(p.low), int(p.high), step=step, log=p.log)
        else:
            values[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
    return values


def make_sampler(spec: SamplerSpec, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler, seeded with ``seed`` (None: not reproducible)."""
    import optuna

    if spec.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: PrunerSpec) -> optuna.pruners.BasePruner:
    """The pruner (``none`` never prunes, whatever a trial reports)."""
    import optuna

    if spec.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials,
                                           n_warmup_steps=spec.warmup_steps)
    if spec.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.min_resource,
            max_resource=spec.max_resource if spec.max_resource is not None else "auto",
            reduction_factor=spec.reduction_factor)
    return optuna.pruners.NopPruner()


__all__ = ["make_pruner", "make_sampler", "suggest"]
