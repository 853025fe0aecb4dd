"""The ``tune:`` block of ``modelport.yaml``: what to train, over which search space, to
optimise which metric (``modelport tune``, run by ``modelport.tuning``).

It lives with the pipeline schema because it is part of the same file (the loader gives
its errors the same file:line:column); nothing here needs Optuna. A trial is either a
``command`` (a train command, as in a pipeline's train step, that writes a model file
and reports metrics) or a ``function`` (``module:callable`` called in-process).
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from modelport.pipelines.fields import Command, Duration, Scalars, Strict, model_name

PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
FUNCTION = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
#: What ``${...}`` may name inside a tune block's command, env, file and metrics_file.
TRIAL_VALUES = ("dir", "number")
STUDY_VALUES = ("name",)

Choice = str | bool | int | float | None


class ParamSpec(Strict):
    """One dimension of the search space."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Choice] | None = None

    @field_validator("choices")
    @classmethod
    def _choices(cls, value: list[Choice] | None) -> list[Choice] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("choices cannot be empty")
        keys = [(type(v).__name__, v) for v in value]
        if len(set(keys)) != len(keys):
            raise ValueError("choices must be distinct")
        return value

    @model_validator(mode="after")
    def _checks(self) -> ParamSpec:
        if self.type == "categorical":
            extra = [k for k in ("low", "high", "step") if getattr(self, k) is not None]
            if self.log:
                extra.append("log")
            if extra:
                raise ValueError(f"a categorical parameter takes `choices:`, not {extra[0]}")
            if self.choices is None:
                raise ValueError("a categorical parameter needs `choices: [...]`")
            return self
        kind = "an int" if self.type == "int" else "a float"
        if self.choices is not None:
            raise ValueError(f"`choices:` is for categorical parameters; {kind} parameter "
                             "takes low and high")
        if self.low is None or self.high is None:
            raise ValueError(f"{kind} parameter needs `low:` and `high:`")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite numbers")
        if self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined (Optuna samples one or the other)")
        if self.step is not None and not self.step > 0:
            raise ValueError("step must be positive")
        if self.type == "int":
            whole = [k for k in ("low", "high", "step")
                     if (v := getattr(self, k)) is not None and not float(v).is_integer()]
            if whole:
                raise ValueError(f"an int parameter needs a whole number as {whole[0]}")
        return self


class ObjectiveSpec(Strict):
    """The metric each trial is judged by, and which way is better."""

    metric: str = Field(min_length=1)
    direction: Literal["maximize", "minimize"]


class PrunerSpec(Strict):
    """When to stop unpromising trials early (needs intermediate values)."""

    type: Literal["none", "median", "hyperband"] = "none"
    startup_trials: int = Field(default=5, ge=0)  # median: trials run in full first
    warmup_steps: int = Field(default=0, ge=0)  # median: steps of a trial never pruned
    min_resource: int = Field(default=1, ge=1)  # hyperband: the smallest step budget
    max_resource: int | None = Field(default=None, ge=1)  # hyperband; default: learned
    reduction_factor: int = Field(default=3, ge=2)


class SamplerSpec(Strict):
    """How parameters are chosen; a seed makes a fresh study reproducible."""

    type: Literal["tpe", "random"] = "tpe"
    seed: int | None = None


def _shorthand(value: Any) -> Any:
    # `pruner: median` and `sampler: random` mean {type: ...}.
    return {"type": value} if isinstance(value, str) else value


class TuneSpec(Strict):
    """``tune:``: the model, the trial (command or function), space, objective, budget."""

    model: str = Field(description="The registered model name the best trial becomes.")
    command: Command | None = None
    function: str | None = Field(default=None, description="module:callable, in-process.")
    shell: bool = False
    env: Scalars = {}
    args: bool = Field(default=False, description="Append --NAME=VALUE per parameter.")
    file: str | None = Field(default=None, description="The model file the command writes.")
    metrics_file: str | None = Field(default=None, description="JSON: metric name → number.")
    trusted: bool = False
    input_example: str | None = None
    space: dict[str, ParamSpec]
    objective: ObjectiveSpec
    trials: int = Field(default=20, ge=1, le=100_000)
    timeout: Duration | None = None
    trial_timeout: Duration | None = None
    pruner: Annotated[PrunerSpec, BeforeValidator(_shorthand)] = PrunerSpec()
    sampler: Annotated[SamplerSpec, BeforeValidator(_shorthand)] = SamplerSpec()
    study: str | None = None
    tags: Scalars = {}
    description: str = ""

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return model_name(value)

    @field_validator("study")
    @classmethod
    def _study(cls, value: str | None) -> str | None:
        return None if value is None else model_name(value, "study name")

    @field_validator("function")
    @classmethod
    def _function(cls, value: str | None) -> str | None:
        if value is not None and not FUNCTION.fullmatch(value):
            raise ValueError(f"{value!r} is not module:callable (e.g. train:fit or "
                             "mypkg.tuning:objective)")
        return value

    @field_validator("space")
    @classmethod
    def _space(cls, value: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        if not value:
            raise ValueError("the search space is empty: give at least one parameter, e.g. "
                             "`C: {type: float, low: 0.01, high: 10, log: true}`")
        bad = [k for k in value if not PARAM_NAME.fullmatch(k)]
        if bad:
            raise ValueError(f"invalid parameter name {bad[0]!r}: use letters, digits and _ "
                             "(it becomes an environment variable and a CLI option)")
        return value

    @model_validator(mode="after")
    def _one_trial_kind(self) -> TuneSpec:
        if (self.command is None) == (self.function is None):
            raise ValueError("a tune block needs exactly one of `command:` (a train command) "
                             "or `function:` (module:callable)")
        if self.command is not None:
            if self.file is None:
                raise ValueError("`command:` needs `file:`, the model file it writes "
                                 "(e.g. `${trial.dir}/model.skops`)")
            if self.shell and not isinstance(self.command, str):
                raise ValueError("shell: true needs the command as one string")
            return self
        only = [k for k in ("file", "metrics_file", "trial_timeout") if getattr(self, k)]
        only += [k for k in ("shell", "args", "env") if getattr(self, k)]
        if only:
            raise ValueError(f"`{only[0]}:` applies to `command:` trials, not to `function:`")
        return self

    @property
    def command_argv(self) -> list[str] | None:
        """The command as an argument list before substitution (None for a function)."""
        if self.command is None:
            return None
        if self.shell:
            assert isinstance(self.command, str)
            return ["/bin/sh", "-c", self.command]
        return shlex.split(self.command) if isinstance(self.command, str) else list(self.command)


def tune_references(spec: TuneSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems with the ``${...}`` references of a tune block: ``(location, message)``
    pairs (locations relative to the block). Allowed: ``${trial.dir}``,
    ``${trial.number}``, ``${study.name}`` and ``${params.NAME}`` for NAME in the space."""
    from modelport.errors import InvalidInputError
    from modelport.pipelines.refs import references, strings

    allowed = {"trial": TRIAL_VALUES, "study": STUDY_VALUES, "params": tuple(spec.space)}
    dumped = spec.model_dump(mode="json", include={"command", "env", "file", "metrics_file"})
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for path, text in strings(dumped):
        try:
            refs = references(text)
        except InvalidInputError as exc:
            problems.append((path, str(exc)))
            continue
        for name, value in refs:
            if name not in allowed:
                problems.append((path, f"${{{name}.{value}}}: a tune block can refer to "
                                       "${trial.dir}, ${trial.number}, ${study.name} and "
                                       "${params.NAME}"))
            elif value not in allowed[name]:
                known = ", ".join(allowed[name])
                problems.append((path, f"${{{name}.{value}}}: {name} has no {value!r} "
                                       f"(it has {known})"))
    return problems


__all__ = ["ObjectiveSpec", "ParamSpec", "PrunerSpec", "SamplerSpec", "TuneSpec",
           "tune_references"]
