"""What each kind of step runs: its argument list, and the outputs read from its result.

``train``/``run`` run the user's command. ``register``, ``gate`` and ``rollout`` run
the modelport CLI in a child process (``python -m modelport ...``), so a pipeline step
behaves exactly like the command a person would type, exit codes included.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.pipelines.spec import COMMAND_KINDS, GateSpec, RegisterSpec, RolloutSpec, Step

MAX_METRICS_BYTES = 1 << 20


@dataclass(frozen=True)
class StepPlan:
    """The child process one step runs."""

    argv: list[str]
    modelport: bool  # a modelport command: its exit code means what modelport documents
    keep_stdout: bool = False  # stdout is data to parse (``--json``), not output to show


@dataclass(frozen=True)
class RunInfo:
    """What a step may need to know about the run it belongs to."""

    python: str
    folder: Path
    pipeline: str
    run_id: str
    git_commit: str | None


def plan(step: Step, info: RunInfo) -> StepPlan:
    """The child process of a (resolved) step."""
    kind = step.kind
    if kind in COMMAND_KINDS:
        return StepPlan(step.argv(), modelport=False)
    cli = [info.python, "-m", "modelport"]
    if kind == "register":
        return StepPlan(cli + _register(step.spec, info), modelport=True, keep_stdout=True)
    if kind == "gate":
        return StepPlan(cli + _gate(step.spec), modelport=True)
    return StepPlan(cli + _rollout(step.spec), modelport=True)


def _register(spec: RegisterSpec, info: RunInfo) -> list[str]:
    args = ["models", "register", spec.name, spec.file, "--json"]
    if spec.trusted:
        args.append("--trusted")
    if spec.input_example:
        args += ["--input-example", spec.input_example]
    if spec.training_data:
        args += ["--training-data", spec.training_data]
    if spec.eval_data:
        args += ["--eval-data", spec.eval_data]
    metrics = dict(spec.metrics)
    if spec.metrics_file:
        metrics.update(read_metrics(info.folder / spec.metrics_file))
    for key, number in metrics.items():
        args += ["--metric", f"{key}={number!r}"]
    for key, text in spec.params.items():
        args += ["--param", f"{key}={text}"]
    # Every version a pipeline registers says which run (and commit) made it.
    tags = {"pipeline": info.pipeline, "pipeline_run": info.run_id}
    if info.git_commit:
        tags["git_commit"] = info.git_commit
    tags.update(spec.tags)
    for key, text in tags.items():
        args += ["--tag", f"{key}={text}"]
    if spec.description:
        args += ["--description", spec.description]
    return args


def read_metrics(path: Path) -> dict[str, float]:
    """A metrics file: one JSON object of metric name → finite number."""
    if not path.is_file():
        raise InvalidInputError(f"metrics file not found: {path}")
    if path.stat().st_size > MAX_METRICS_BYTES:
        raise InvalidInputError(f"metrics file {path} is larger than 1 MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"metrics file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"metrics file {path} must hold a JSON object of name → number")
    out: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise InvalidInputError(f"metrics file {path}: {key!r} is not a finite number: "
                                    f"{value!r}")
        out[key] = float(value)
    return out


def _gate(spec: GateSpec) -> list[str]:
    assert spec.candidate is not None  # the loader fills in the default candidate
    args = ["gate", spec.candidate, "--data", spec.data, "--target", spec.target]
    if spec.against:
        args += ["--against", spec.against]
    for rule in spec.rules:
        args += ["--rule", rule]
    if spec.max_latency_ms is not None:
        args += ["--max-latency-ms", f"{spec.max_latency_ms:g}"]
    if spec.junit:
        args += ["--junit", spec.junit]
    return args


def _rollout(spec: RolloutSpec) -> list[str]:
    assert spec.candidate is not None
    args = ["rollout", "start", spec.endpoint, "--candidate", spec.candidate,
            "--strategy", spec.strategy.value]
    if spec.steps:
        args += ["--steps", ",".join(f"{s:g}" for s in spec.steps)]
    if spec.step_duration is not None:
        args += ["--step-duration", f"{spec.step_duration:g}s"]
    if spec.require_gate:
        args.append("--require-gate")
    if spec.min_requests is not None:
        args += ["--min-requests", str(spec.min_requests)]
    if spec.max_shift is not None:
        args += ["--max-shift", f"{spec.max_shift:g}"]
    return args


def register_outputs(stdout: str) -> dict[str, str]:
    """``uri``, ``name`` and ``version`` from ``models register --json`` output."""
    try:
        data: Any = json.loads(stdout)
        return {"uri": str(data["uri"]), "name": str(data["name"]),
                "version": str(data["version"])}
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InvalidInputError("`modelport models register --json` printed no version "
                                f"(stdout began {stdout[:200]!r})") from None


__all__ = ["RunInfo", "StepPlan", "plan", "read_metrics", "register_outputs"]
