"""Entities back from their JSON form (``to_dict``), for the remote client.

Each ``*_from`` is the inverse of the entity's ``to_dict``, so a command prints the same
table or JSON whether its registry is local or behind ``/api/``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelport.registry.audit_served import Served, ServedVersion
from modelport.registry.audit_verify import AuditProblem, AuditVerification
from modelport.registry.entities import (
    AliasEvent,
    AuditRecord,
    Deployment,
    DeploymentEvent,
    Mode,
    ModelVersion,
    RegisteredModel,
    Rollout,
    RolloutStatus,
)
from modelport.rollout.analysis import Check, Measurements, Verdict
from modelport.rollout.assess import Assessment
from modelport.rollout.service import Status


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def version_from(d: dict[str, Any]) -> ModelVersion:
    """A ModelVersion from ``ModelVersion.to_dict``."""
    fields = {k: v for k, v in d.items() if k != "uri"}
    return ModelVersion(**{**fields, "created_at": _at(d["created_at"]),
                           "deleted_at": _time(d.get("deleted_at")),
                           "aliases": tuple(d.get("aliases") or ())})


def model_from(d: dict[str, Any]) -> RegisteredModel:
    """A RegisteredModel from ``RegisteredModel.to_dict``."""
    return RegisteredModel(**{**d, "created_at": _at(d["created_at"]),
                              "updated_at": _at(d["updated_at"]),
                              "deleted_at": _time(d.get("deleted_at"))})


def alias_event_from(d: dict[str, Any]) -> AliasEvent:
    """An AliasEvent from ``AliasEvent.to_dict``."""
    return AliasEvent(**{**d, "at": _at(d["at"])})


def deployment_from(d: dict[str, Any]) -> Deployment:
    """A Deployment from ``Deployment.to_dict``."""
    return Deployment(**{**d, "mode": Mode(d["mode"]) if d.get("mode") else None,
                         "created_at": _at(d["created_at"]),
                         "updated_at": _at(d["updated_at"])})


def rollout_from(d: dict[str, Any]) -> Rollout:
    """A Rollout from ``Rollout.to_dict``."""
    return Rollout(**{**d, "status": RolloutStatus(d["status"]),
                      "step_started_at": _time(d.get("step_started_at")),
                      "created_at": _at(d["created_at"]),
                      "updated_at": _at(d["updated_at"])})


def moved_from(d: dict[str, Any]) -> tuple[Rollout, Deployment]:
    """``{"rollout", "deployment"}`` (start, promote, pause, resume, abort)."""
    return rollout_from(d["rollout"]), deployment_from(d["deployment"])


def event_from(d: dict[str, Any]) -> DeploymentEvent:
    """A DeploymentEvent from ``DeploymentEvent.to_dict``."""
    return DeploymentEvent(**{**d, "at": _at(d["at"])})


def assessment_from(d: dict[str, Any]) -> Assessment:
    """An Assessment from ``Assessment.to_dict``."""
    m, v = d["measurements"], d["verdict"]
    return Assessment(
        at=_at(d["at"]), elapsed=float(d["elapsed_seconds"]), step_done=bool(d["step_done"]),
        measurements=Measurements(m.get("candidate", {}), m.get("stable", {}),
                                  m.get("notes", {})),
        verdict=Verdict(v["outcome"], v["reason"], [Check(**c) for c in v["checks"]]))


def status_from(d: dict[str, Any]) -> Status:
    """A rollout Status from ``Status.to_dict``."""
    seen = d.get("assessment")
    return Status(rollout_from(d["rollout"]), deployment_from(d["deployment"]),
                  assessment_from(seen) if seen else None, d.get("note", ""))


def record_from(d: dict[str, Any]) -> AuditRecord:
    """An AuditRecord from ``AuditRecord.to_dict``."""
    return AuditRecord(**{**d, "at": _at(d["at"])})


def verification_from(d: dict[str, Any]) -> AuditVerification:
    """An AuditVerification from its ``to_dict``."""
    return AuditVerification(d["records"], d.get("head_count"), d.get("head_hash"),
                             tuple(AuditProblem(**p) for p in d.get("problems", [])))


def served_from(d: dict[str, Any]) -> Served:
    """A Served (``audit at``) from its ``to_dict``."""
    return Served(endpoint=d["endpoint"], at=_at(d["at"]), source=d["source"],
                  model=d["model"],
                  versions=tuple(ServedVersion(**v) for v in d.get("versions", [])),
                  record=record_from(d["record"]), rollout_id=d.get("rollout_id"))


__all__ = ["alias_event_from", "assessment_from", "deployment_from", "event_from",
           "model_from", "moved_from", "record_from", "rollout_from", "served_from",
           "status_from", "verification_from", "version_from"]
