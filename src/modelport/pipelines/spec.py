"""The ``modelport.yaml`` schema: a named pipeline and its ordered steps.

Each step is a mapping with exactly one kind key (``train``, ``run``, ``register``,
``gate``, ``rollout``) plus optional ``name``, ``env``, ``timeout`` and, for commands,
``shell``. Unknown keys are refused. Loading (``modelport.pipelines.loader``) adds
the YAML line of every error and checks references between steps.
"""

from __future__ import annotations

import itertools
import re
import shlex
from typing import Any

from pydantic import Field, field_validator, model_validator

from modelport.pipelines.fields import (
    Command,
    Duration,
    Scalars,
    Strict,
    model_name,
    parse_duration,
    valid_name,
)
from modelport.pipelines.tunespec import TuneSpec
from modelport.registry.entities import Mode

KINDS = ("train", "run", "register", "gate", "rollout")
COMMAND_KINDS = ("train", "run")
STEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class RegisterSpec(Strict):
    """Register a model file as the next version (``modelport models register``)."""

    name: str = Field(description="Model name.")
    file: str = Field(description="Model file, relative to the pipeline's folder.")
    trusted: bool = False
    input_example: str | None = None
    training_data: str | None = Field(
        None, description="Features it was trained on (file or datasets:/N/V): profiled "
                          "for drift and linked as a dataset.")
    eval_data: str | None = Field(None, description="Evaluation data, linked as a dataset.")
    metrics_file: str | None = Field(None, description="JSON object of metric name → number.")
    metrics: dict[str, float] = {}
    params: Scalars = {}
    tags: Scalars = {}
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return model_name(value)


class GateSpec(Strict):
    """Judge the candidate on evaluation data (``modelport gate``)."""

    candidate: str | None = Field(None, description="Default: the last registered version.")
    data: str
    target: str
    against: str | None = None
    rules: list[str] = []
    max_latency_ms: float | None = Field(None, gt=0)
    junit: str | None = None

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        if any(not r.strip() for r in value):
            raise ValueError("a rule cannot be empty")
        return value


class RolloutSpec(Strict):
    """Start a rollout of the candidate on an endpoint (``modelport rollout start``)."""

    endpoint: str
    candidate: str | None = Field(None, description="Default: the last registered version.")
    strategy: Mode = Mode.CANARY
    steps: list[float] | None = None
    step_duration: Duration | None = None
    require_gate: bool = False
    wait: bool = Field(False, description="Block until the rollout is promoted (or fails).")
    # Analysis thresholds (``rollout start --min-requests/--max-shift``): a retrained
    # model answers drifted traffic differently from stable by design.
    min_requests: int | None = Field(None, ge=1)
    max_shift: float | None = Field(None, ge=0, le=1)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return model_name(value, "endpoint name")

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        if not value or any(not 0 < s <= 100 for s in value):
            raise ValueError("steps are traffic percentages in (0, 100], e.g. [5, 25, 50, 100]")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("steps must increase")
        if value[-1] != 100:
            raise ValueError("steps must end at 100")
        return value


class Step(Strict):
    """One step: exactly one of the kind keys, plus the options every step has."""

    train: Command | None = None
    run: Command | None = None
    # ``register`` is an attribute of every pydantic model class (ABCMeta), hence the alias.
    register_: RegisterSpec | None = Field(None, alias="register")
    gate: GateSpec | None = None
    rollout: RolloutSpec | None = None
    name: str | None = None
    env: Scalars = {}
    timeout: Duration | None = None
    shell: bool = False

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("a step is a mapping such as `train: python train.py` or "
                             "`register: {name: iris, file: model.skops}`")
        kinds = [k for k in KINDS if k in data]
        if len(kinds) != 1:
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            raise ValueError(f"a step needs exactly one of {', '.join(KINDS)} ({found})")
        return data

    @model_validator(mode="after")
    def _checks(self) -> Step:
        if self.name is not None and not STEP_NAME.fullmatch(self.name):
            raise ValueError(f"invalid step name {self.name!r}: use 1-64 characters from "
                             "A-Z a-z 0-9 _ -, starting with a letter or digit")
        if self.name == "pipeline":
            raise ValueError("the step name 'pipeline' is reserved for ${pipeline.*}")
        if self.shell and self.kind not in COMMAND_KINDS:
            raise ValueError("shell: applies to train and run steps only")
        if self.shell and not isinstance(self.command, str):
            raise ValueError("shell: true needs the command as one string")
        return self

    @property
    def kind(self) -> str:
        """Which kind of step this is (the one kind key that is set)."""
        return next(k for k in KINDS if self.spec_of(k) is not None)

    def spec_of(self, kind: str) -> Any:
        """The value under kind key ``kind`` (a command or a spec model), or None."""
        return getattr(self, "register_" if kind == "register" else kind)

    @property
    def spec(self) -> Any:
        """The value under this step's kind key."""
        return self.spec_of(self.kind)

    @property
    def label(self) -> str:
        """The step's name: ``name:`` if given, else its kind."""
        return self.name or self.kind

    @property
    def command(self) -> str | list[str] | None:
        """The command of a train/run step (None for the other kinds)."""
        return self.train if self.train is not None else self.run

    def argv(self) -> list[str]:
        """A train/run step's argument list (shell steps run through ``/bin/sh -c``)."""
        command = self.command
        if command is None:
            raise ValueError(f"a {self.kind} step has no command")
        if self.shell:
            assert isinstance(command, str)
            return ["/bin/sh", "-c", command]
        return shlex.split(command) if isinstance(command, str) else list(command)


class Pipeline(Strict):
    """A named, ordered list of steps; ``env`` applies to every step. A file may hold a
    ``tune:`` block (``modelport tune``) besides or instead of the steps."""

    name: str
    # An explicit `steps:` needs a step; it may be left out when there is a tune block
    # (pydantic does not validate the default).
    steps: list[Step] = Field(default=[], min_length=1)
    env: Scalars = {}
    tune: TuneSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return valid_name(value, "pipeline name")

    @model_validator(mode="after")
    def _something_to_do(self) -> Pipeline:
        if not self.steps and self.tune is None:
            raise ValueError("a pipeline needs `steps:` (a list of at least one step) "
                             "or a `tune:` block")
        return self


__all__ = [
    "COMMAND_KINDS",
    "KINDS",
    "GateSpec",
    "Pipeline",
    "RegisterSpec",
    "RolloutSpec",
    "Step",
    "parse_duration",
]
