"""``${step.output}`` references between steps: found, checked and substituted as text.

A reference names an earlier step and one of its outputs (a register step has ``uri``,
``name`` and ``version``) or a value of the run (``${pipeline.name}``,
``${pipeline.run_id}``, ``${pipeline.git_commit}``). ``$${`` writes a literal ``${``.
Nothing is ever evaluated: a reference is replaced by a string or refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from modelport.errors import InvalidInputError

OUTPUTS: dict[str, tuple[str, ...]] = {"register": ("uri", "name", "version")}
PIPELINE_VALUES = ("name", "run_id", "git_commit")
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)(\})?")
_REF = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_]*)")

Values = Mapping[str, Mapping[str, str]]


def references(text: str) -> list[tuple[str, str]]:
    """The ``(step, output)`` pairs ``text`` refers to; malformed ones raise."""
    found = []
    for match in _TOKEN.finditer(text):
        if match[0] == "$${":
            continue
        if match[2] is None:
            raise InvalidInputError(f"unclosed ${{ in {text!r} (write $${{ for a literal ${{)")
        ref = _REF.fullmatch(match[1].strip())
        if ref is None:
            raise InvalidInputError(f"${{{match[1]}}} is not a reference: use ${{STEP.OUTPUT}}, "
                                    "e.g. ${register.uri}")
        found.append((ref[1], ref[2]))
    return found


def substitute(text: str, values: Values) -> str:
    """``text`` with every reference replaced by its value (and ``$${`` by ``${``)."""

    def one(match: re.Match[str]) -> str:
        if match[0] == "$${":
            return "${"
        ref = _REF.fullmatch((match[1] or "").strip())
        if match[2] is None or ref is None:
            raise InvalidInputError(f"malformed reference in {text!r}")
        try:
            return values[ref[1]][ref[2]]
        except KeyError:
            raise InvalidInputError(f"${{{ref[1]}.{ref[2]}}} has no value (yet)") from None

    return _TOKEN.sub(one, text)


def strings(obj: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...],
                                                                         str]]:
    """Every string inside nested dicts and lists, with its path."""
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from strings(value, (*path, key))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            yield from strings(value, (*path, i))


def resolve(obj: Any, values: Values) -> Any:
    """A copy of nested dicts and lists with every string substituted."""
    if isinstance(obj, str):
        return substitute(obj, values)
    if isinstance(obj, dict):
        return {key: resolve(value, values) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [resolve(value, values) for value in obj]
    return obj


__all__ = ["OUTPUTS", "PIPELINE_VALUES", "references", "resolve", "strings", "substitute"]
