"""Roles nest, patterns scope, fleet-wide requests need '*', denials never name models."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from modelport.access import Action, Role, authorize, covers, parse_role, validate_pattern
from modelport.errors import InvalidInputError, PermissionDeniedError


@dataclass(frozen=True)
class Grant:
    role: Role
    models: str = "*"


@pytest.mark.parametrize(("role", "allowed"), [
    (Role.READER, {Action.READ}),
    (Role.PREDICTOR, {Action.READ, Action.PREDICT}),
    (Role.DEPLOYER, {Action.READ, Action.PREDICT, Action.DEPLOY}),
    (Role.ADMIN, set(Action)),
])
def test_roles_nest(role: Role, allowed: set[Action]) -> None:
    for action in Action:
        if action in allowed:
            authorize(Grant(role), action, "iris")
            authorize(Grant(role), action, None)
        else:
            with pytest.raises(PermissionDeniedError, match=f"a {role.value} token may not"):
                authorize(Grant(role), action, "iris")


def test_patterns_scope_models_and_fleet_requests_need_star() -> None:
    scoped = Grant(Role.PREDICTOR, "iris*")
    authorize(scoped, Action.PREDICT, "iris")
    authorize(scoped, Action.PREDICT, "iris-v2")
    denied = []
    for model in ("fraud", "IRIS", "xiris", None, ""):
        with pytest.raises(PermissionDeniedError) as info:
            authorize(scoped, Action.PREDICT, model)
        denied.append(str(info.value))
    # The same words for every named model: nothing says whether it exists.
    assert len({d for d in denied[:3] + denied[4:]}) == 1
    assert "fraud" not in denied[0]
    assert covers("fraud-[0-9]", "fraud-7") and not covers("fraud-[0-9]", "fraud-x")
    assert not covers("**", None)  # only exactly '*' is fleet-wide


def test_names_and_patterns_are_checked() -> None:
    assert parse_role(" Admin ") is Role.ADMIN
    with pytest.raises(InvalidInputError, match="reader, predictor, deployer, admin"):
        parse_role("root")
    for bad in ("", "a/b", "a b", "x" * 129, "iris\x00"):
        with pytest.raises(InvalidInputError, match="invalid model pattern"):
            validate_pattern(bad)
    assert validate_pattern("iris-[!x]*?") == "iris-[!x]*?"
