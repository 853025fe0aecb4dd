"""Field types shared by the ``modelport.yaml`` schemas (pipeline steps and the tune
block): durations, commands, plain string maps, names, and the strict base model."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from modelport.errors import InvalidNameError
from modelport.uri import validate_name

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"250ms"``, ``"5m"`` or ``"1h"`` (positive)."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        seconds = float(match[1]) * _UNITS[match[2]]
    else:
        raise ValueError(f"{value!r} is not a duration: use seconds or '500ms', '30s', '5m', '1h'")
    if not seconds > 0:
        raise ValueError("a duration must be positive")
    return seconds


def _command(value: Any) -> str | list[str]:
    # YAML turns `--seed 42` items into ints: accept scalars, refuse nested structures.
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("the command is empty")
        return value
    if isinstance(value, list) and value:
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            raise ValueError("every item of a command list must be a string or a number")
        return [str(v) for v in value]
    raise ValueError("a command is a string (split like a shell would, but run without one) "
                     "or a non-empty list of arguments")


def _scalar_map(value: Any) -> Any:
    if isinstance(value, dict):
        bad = [k for k, v in value.items() if isinstance(v, dict | list) or v is None]
        if bad:
            raise ValueError(f"{bad[0]!r} needs a plain value (string, number or boolean)")
        return {str(k): (str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in value.items()}
    return value


Command = Annotated[str | list[str], BeforeValidator(_command)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
Scalars = Annotated[dict[str, str], BeforeValidator(_scalar_map)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def valid_name(value: str, what: str) -> str:
    try:
        return validate_name(value, what)
    except InvalidNameError as exc:  # pydantic reports ValueErrors with their location
        raise ValueError(str(exc)) from None


def model_name(value: str, what: str = "model name") -> str:
    if "${" in value:  # a reference is checked once it is resolved
        return value
    return valid_name(value, what)


__all__ = ["Command", "Duration", "Scalars", "Strict", "model_name", "parse_duration",
           "valid_name"]
