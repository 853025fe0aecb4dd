"""Registering a study's best trial: once per trial, whichever process gets there.

The version carries the trial's parameters and metrics, and the tags that link it back
to its trial (``modelport.tune.study``, ``modelport.tune.trial``, ``modelport.tune.value``:
read by lineage tools, so their names are fixed). Processes tuning one study in parallel
each try at their end; a registry lease and the tags make the second one find the first
one's version instead of registering the same trial twice.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ConflictError, ModelNotFoundError
from modelport.pipelines.tunespec import TuneSpec
from modelport.tuning.storage import METRICS

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from modelport.client import Registry
    from modelport.registry.entities import ModelVersion

STUDY_TAG = "modelport.tune.study"
TRIAL_TAG = "modelport.tune.trial"
VALUE_TAG = "modelport.tune.value"
REFIT_TAG = "modelport.tune.refit"
LEASE_TTL = 600.0
LEASE_WAIT = 120.0


@dataclass(frozen=True)
class Origin:
    """Where the registered version came from besides its trial."""

    pipeline: str
    git_commit: str | None
    folder: Path


def registered(registry: Registry, model: str, study: str, number: int) -> ModelVersion | None:
    """The version already registered for trial ``number`` of ``study``, if any."""
    try:
        versions = registry.list(model)
    except ModelNotFoundError:
        return None
    for v in versions:
        if v.tags.get(STUDY_TAG) == study and v.tags.get(TRIAL_TAG) == str(number):
            return v  # type: ignore[no-any-return]
    return None


def register_trial(registry: Registry, spec: TuneSpec, study: str, trial: FrozenTrial,
                   origin: Origin, *, model: Any = None, model_file: Path | None = None,
                   metrics: dict[str, float] | None = None,
                   refit: bool = False) -> tuple[ModelVersion, bool]:
    """Register ``trial`` (from ``model`` or ``model_file``) unless it already is;
    returns the version and whether this call registered it."""
    lease = "tune:" + hashlib.blake2b(study.encode(), digest_size=16).hexdigest()
    holder = uuid.uuid4().hex
    _acquire(registry, lease, holder)
    try:
        found = registered(registry, spec.model, study, trial.number)
        if found is not None:
            return found, False
        return _register(registry, spec, study, trial, origin, model, model_file,
                         metrics, refit), True
    finally:
        registry.records.release_lease(lease, holder)


def _acquire(registry: Registry, lease: str, holder: str) -> None:
    deadline = time.monotonic() + LEASE_WAIT
    while not registry.records.acquire_lease(lease, holder, LEASE_TTL):
        if time.monotonic() > deadline:
            raise ConflictError("another process has been registering this study's best "
                                f"trial for over {LEASE_WAIT:.0f} s; try again later")
        time.sleep(0.2)


def _register(registry: Registry, spec: TuneSpec, study: str, trial: FrozenTrial,
              origin: Origin, model: Any, model_file: Path | None,
              metrics: dict[str, float] | None, refit: bool) -> ModelVersion:
    from modelport.datafiles import read_table

    tags = {"pipeline": origin.pipeline, STUDY_TAG: study, TRIAL_TAG: str(trial.number),
            VALUE_TAG: repr(trial.value)}
    if origin.git_commit:
        tags["git_commit"] = origin.git_commit
    if refit:
        tags[REFIT_TAG] = "true"
    tags.update(spec.tags)
    example = read_table(origin.folder / spec.input_example) if spec.input_example else None
    kept = metrics if metrics is not None else dict(trial.user_attrs.get(METRICS) or {})
    common: dict[str, Any] = {"input_example": example, "metrics": kept,
                              "params": dict(trial.params), "tags": tags,
                              "trusted": spec.trusted, "description": spec.description}
    if model_file is not None:
        return registry.register_file(spec.model, model_file, **common)
    return registry.log_model(model, spec.model, **common)


__all__ = ["REFIT_TAG", "STUDY_TAG", "TRIAL_TAG", "VALUE_TAG", "Origin", "register_trial",
           "registered"]
