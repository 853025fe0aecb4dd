"""``Control``: the registry and rollout operations the CLI runs, local or remote.

``LocalControl`` runs them on a ``Registry`` (and ``rollout.service``) in this process;
``remote.RemoteControl`` sends them to a server's ``/api/``. Both return the same
entities, so a command prints the same whichever it is given. ``StartOptions`` is
``rollout start``'s flags as given: checked by ``start_plan`` on whichever side runs
the rollout (one parser, so local and remote refuse the same input the same way).
"""

from __future__ import annotations

import builtins
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from modelport.errors import InvalidInputError

if TYPE_CHECKING:
    from modelport.client import Registry
    from modelport.registry.audit_served import Served
    from modelport.registry.audit_verify import AuditVerification
    from modelport.registry.entities import (
        AliasEvent,
        AuditRecord,
        Deployment,
        DeploymentEvent,
        ModelVersion,
        RegisteredModel,
        Rollout,
    )
    from modelport.rollout.service import AnalysisSpec, Status
    from modelport.rollout.strategies import Plan

Move = Literal["promote", "pause", "resume", "abort"]
MOVES: tuple[str, ...] = ("promote", "pause", "resume", "abort")
_THRESHOLDS = ("max_error_rate", "max_error_increase", "max_p99_ms", "max_p99_ratio",
               "min_agreement", "max_shift", "min_requests")


@dataclass(frozen=True)
class StartOptions:
    """``modelport rollout start``'s options, as typed (the JSON body of
    ``POST /api/rollouts/ENDPOINT``)."""

    candidate: str
    strategy: str = "canary"
    steps: str | None = None
    step_duration: str | None = None
    step_requests: int | None = None
    require_gate: bool = False
    sticky_header: str | None = None
    max_error_rate: float | None = None
    max_error_increase: float | None = None
    max_p99_ms: float | None = None
    max_p99_ratio: float | None = None
    min_agreement: float | None = None
    max_shift: float | None = None
    min_requests: int | None = None
    ready_timeout: str | None = None
    analysis: str = "builtin"
    prometheus_url: str | None = None
    queries: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body sent to the server (unset options left out)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}

    @classmethod
    def from_dict(cls, data: Any) -> StartOptions:
        """Options from a request body, refusing unknown keys and wrong types."""
        if not isinstance(data, dict):
            raise InvalidInputError("the rollout plan must be a JSON object")
        known = cls.__dataclass_fields__
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidInputError(f"unknown rollout option(s): {', '.join(unknown)}")
        if not isinstance(data.get("candidate"), str):
            raise InvalidInputError("the rollout plan needs \"candidate\": a model URI")
        for key, value in data.items():
            _check_type(key, value)
        return cls(**data)


def _check_type(key: str, value: Any) -> None:
    if value is None:
        return
    if key in ("require_gate",):
        ok = isinstance(value, bool)
    elif key in ("step_requests", "min_requests"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif key in _THRESHOLDS:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif key == "queries":
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in value.items())
    else:
        ok = isinstance(value, str)
    if not ok:
        raise InvalidInputError(f"rollout option {key!r} has the wrong type: {value!r}")


def start_plan(options: StartOptions) -> tuple[Plan, AnalysisSpec]:
    """The rollout plan and analysis the options describe (precise errors otherwise)."""
    from modelport.rollout.analysis import Thresholds
    from modelport.rollout.service import AnalysisSpec
    from modelport.rollout.strategies import parse_duration, plan

    the_plan = plan(options.strategy, steps=options.steps,
                    step_duration=options.step_duration, step_requests=options.step_requests)
    limits: dict[str, Any] = {k: getattr(options, k) for k in _THRESHOLDS}
    if options.ready_timeout is not None:
        limits["ready_timeout"] = parse_duration(options.ready_timeout, "--ready-timeout")
    spec = AnalysisSpec(Thresholds(**{k: v for k, v in limits.items() if v is not None}),
                        provider=options.analysis, prometheus_url=options.prometheus_url,
                        queries=dict(options.queries) or None)
    return the_plan, spec


class Control(Protocol):
    """What ``models``, ``rollout``, ``rollback`` and ``audit`` commands call."""

    def list(self, name: str | None = None, *, include_deleted: bool = False
             ) -> builtins.list[Any]: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def get(self, uri: str) -> ModelVersion: ...
    def register_file(self, name: str, path: str | os.PathLike[str], *, trusted: bool = False,
                      input_example: Any = None, metrics: dict[str, float] | None = None,
                      params: dict[str, Any] | None = None,
                      tags: dict[str, str] | None = None, description: str = "",
                      sign_key: str | os.PathLike[str] | None = None) -> ModelVersion: ...
    def set_alias(self, name: str, alias: str, version: int, *, reason: str = ""
                  ) -> AliasEvent: ...
    def delete_alias(self, name: str, alias: str, *, reason: str = "") -> AliasEvent: ...
    def history(self, name: str, alias: str | None = None) -> builtins.list[AliasEvent]: ...
    def rollout_start(self, endpoint: str, options: StartOptions
                      ) -> tuple[Rollout, Deployment]: ...
    def rollout_status(self, endpoint: str | None = None) -> builtins.list[Status]: ...
    def rollout_move(self, endpoint: str, move: Move, *, reason: str = ""
                     ) -> tuple[Rollout, Deployment]: ...
    def rollback(self, endpoint: str, *, reason: str = "") -> Deployment: ...
    def rollout_history(self, endpoint: str) -> builtins.list[DeploymentEvent]: ...
    def audit_list(self, *, model: str | None = None, action: str | None = None,
                   limit: int = 50) -> builtins.list[AuditRecord]: ...
    def audit_verify(self) -> AuditVerification: ...
    def audit_at(self, endpoint: str, moment: datetime, *, alias: str = "champion"
                 ) -> Served: ...


class LocalControl:
    """``Control`` on a registry in this process (actor: the registry's user)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def list(self, name: str | None = None, *, include_deleted: bool = False
             ) -> builtins.list[Any]:
        """All models, or the versions of ``name``."""
        return self.registry.list(name, include_deleted=include_deleted)

    def get_model(self, name: str) -> RegisteredModel:
        """The registered model ``name``."""
        return self.registry.get_model(name)

    def get(self, uri: str) -> ModelVersion:
        """The version ``uri`` points to."""
        return self.registry.get(uri)

    def register_file(self, name: str, path: str | os.PathLike[str], *, trusted: bool = False,
                      input_example: Any = None, metrics: dict[str, float] | None = None,
                      params: dict[str, Any] | None = None,
                      tags: dict[str, str] | None = None, description: str = "",
                      sign_key: str | os.PathLike[str] | None = None) -> ModelVersion:
        """Register a model file (``Registry.register_file``)."""
        return self.registry.register_file(
            name, path, trusted=trusted, input_example=input_example, metrics=metrics,
            params=params, tags=tags, description=description, sign_key=sign_key)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str = ""
                  ) -> AliasEvent:
        """Point ``alias`` at ``version``."""
        return self.registry.set_alias(name, alias, version, reason=reason)

    def delete_alias(self, name: str, alias: str, *, reason: str = "") -> AliasEvent:
        """Remove ``alias``."""
        return self.registry.delete_alias(name, alias, reason=reason)

    def history(self, name: str, alias: str | None = None) -> builtins.list[AliasEvent]:
        """Every alias move of ``name``."""
        return self.registry.history(name, alias)

    def rollout_start(self, endpoint: str, options: StartOptions
                      ) -> tuple[Rollout, Deployment]:
        """Start a rollout (``rollout.service.start``)."""
        from modelport.rollout import service

        the_plan, spec = start_plan(options)
        return service.start(self.registry, endpoint, options.candidate, the_plan, spec,
                             require_gate=options.require_gate, sticky=options.sticky_header)

    def rollout_status(self, endpoint: str | None = None) -> builtins.list[Status]:
        """Rollouts as ``rollout status`` shows them."""
        from modelport.rollout import service

        return service.status(self.registry, endpoint)

    def rollout_move(self, endpoint: str, move: Move, *, reason: str = ""
                     ) -> tuple[Rollout, Deployment]:
        """Promote, pause, resume or abort the endpoint's active rollout."""
        from modelport.rollout import service

        if move == "abort":
            return service.abort(self.registry, endpoint, reason=reason)
        if move not in MOVES:
            raise InvalidInputError(f"unknown rollout move {move!r}: use {', '.join(MOVES)}")
        moved: tuple[Rollout, Deployment] = getattr(service, move)(self.registry, endpoint)
        return moved

    def rollback(self, endpoint: str, *, reason: str = "") -> Deployment:
        """Put the previous stable version back."""
        from modelport.rollout import service

        return service.rollback(self.registry, endpoint, reason=reason)

    def rollout_history(self, endpoint: str) -> builtins.list[DeploymentEvent]:
        """Every event of the endpoint."""
        from modelport.rollout import service

        return service.history(self.registry, endpoint)

    def audit_list(self, *, model: str | None = None, action: str | None = None,
                   limit: int = 50) -> builtins.list[AuditRecord]:
        """The newest audit records, oldest first."""
        return self.registry.audit.list(model=model, action=action, limit=limit)

    def audit_verify(self) -> AuditVerification:
        """The audit chain checked."""
        return self.registry.audit.verify()

    def audit_at(self, endpoint: str, moment: datetime, *, alias: str = "champion"
                 ) -> Served:
        """What served ``endpoint`` at ``moment``."""
        return self.registry.audit.served_at(endpoint, moment, alias=alias)


__all__ = ["MOVES", "Control", "LocalControl", "Move", "StartOptions", "start_plan"]
