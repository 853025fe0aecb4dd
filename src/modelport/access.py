"""Roles, the actions they allow, and the one permission check every edge calls.

A token has a role and a model pattern (an ``fnmatch`` glob over model names, ``*`` by
default). The roles nest::

    reader     read: model metadata, readiness, and (with models "*") the fleet views
    predictor  reader + predict (inference and feedback)
    deployer   predictor + deploy (register, gate, alias, roll out, roll back, load)
    admin      deployer + admin (tokens); always covers every model

``authorize(token, action, model)`` is all the HTTP edges (the inference server, the
``/api/`` control plane) need. ``model=None`` means the request concerns no single model
but the whole fleet (``/metrics``, the dashboard, the repository index, token
management): only a token whose pattern is exactly ``*`` may do that, so a scoped token
never sees which other models exist. A denial never says whether ``model`` exists.
"""

from __future__ import annotations

import re
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Protocol

from modelport.errors import InvalidInputError, PermissionDeniedError

ALL_MODELS = "*"
_PATTERN_RE = re.compile(r"[A-Za-z0-9._*?\[\]!-]{1,128}")


class Role(StrEnum):
    """What a token may do, each role including the ones before it."""

    READER = "reader"
    PREDICTOR = "predictor"
    DEPLOYER = "deployer"
    ADMIN = "admin"


class Action(StrEnum):
    """What a request does, as far as permissions go."""

    READ = "read"
    PREDICT = "predict"
    DEPLOY = "deploy"
    ADMIN = "admin"


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.READER: frozenset({Action.READ}),
    Role.PREDICTOR: frozenset({Action.READ, Action.PREDICT}),
    Role.DEPLOYER: frozenset({Action.READ, Action.PREDICT, Action.DEPLOY}),
    Role.ADMIN: frozenset(Action),
}


class Grant(Protocol):
    """What ``authorize`` reads of a token."""

    @property
    def role(self) -> Role: ...
    @property
    def models(self) -> str: ...


def parse_role(text: str) -> Role:
    """A role from its name, or an InvalidInputError listing the roles."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise InvalidInputError(f"unknown role {text!r}: use one of "
                                f"{', '.join(r.value for r in Role)}") from None


def validate_pattern(pattern: str) -> str:
    """``pattern`` if it is a model-name glob (name characters plus ``* ? [ ] !``)."""
    if not isinstance(pattern, str) or not _PATTERN_RE.fullmatch(pattern):
        raise InvalidInputError(
            f"invalid model pattern {repr(pattern)[:80]}: use 1-128 characters of model "
            "names (A-Z a-z 0-9 . _ -) and the glob characters * ? [ ] !, e.g. 'iris*'")
    return pattern


def covers(pattern: str, model: str | None) -> bool:
    """Whether a token with this model pattern may act on ``model`` (None: the fleet)."""
    if pattern == ALL_MODELS:
        return True
    # Case-sensitive, as model names are; a fleet-wide request needs exactly "*".
    return model is not None and fnmatchcase(model, pattern)


def authorize(token: Grant, action: Action, model: str | None) -> None:
    """Raise PermissionDeniedError unless ``token`` may do ``action`` on ``model``.

    ``model`` is the name the request names (the endpoint on the inference routes, the
    registered model on ``/api/``); None for a fleet-wide request. The message is the
    same whether or not the model exists.
    """
    if action not in ROLE_ACTIONS[token.role]:
        raise PermissionDeniedError(f"a {token.role.value} token may not {action.value}")
    if not covers(token.models, model):
        what = "the whole fleet" if model is None else "this model"
        raise PermissionDeniedError(f"this token is not allowed to {action.value} {what}")


__all__ = ["ALL_MODELS", "ROLE_ACTIONS", "Action", "Grant", "Role", "authorize", "covers",
           "parse_role", "validate_pattern"]
