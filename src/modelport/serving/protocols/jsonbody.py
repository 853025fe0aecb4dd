"""Request bodies as JSON: strict parsing and the small checks every JSON protocol shares.

``load_json`` refuses what a lenient parser would silently accept (duplicate keys,
lone surrogates, non-UTF-8, NaN literals handled as the protocols specify) with a 400
naming the problem; ``quick_json`` is the hot path's cheap variant. ``json_type``,
``expect_object``, ``check_keys`` and ``shown`` word the errors the same way in every
protocol. Raises only :class:`InvalidInputError`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from modelport.errors import InvalidInputError


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that refuses duplicate keys instead of keeping the last one."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidInputError(f"invalid JSON: duplicate key {shown(key)} in an object")
        if not is_unicode(key):
            raise InvalidInputError(f"invalid JSON: key {shown(key)} is not valid Unicode")
        obj[key] = value
    return obj


def is_unicode(text: str) -> bool:
    """False for strings holding lone surrogates (``"\\ud800"`` escapes), which no
    model, log or response can encode as UTF-8."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Integers beyond int64 come out of orjson as floats where the stdlib keeps an int (which
# a later check refuses): a body holding a run of 19 digits takes the exact parser. The
# run is found by mapping digits to "0" and the rest to " " (C speed, unlike a regex).
_DIGITS_TO_ZERO = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_NUMBER = b"0" * 19


def load_json(body: bytes) -> Any:
    """Parse a request body as strict-UTF-8 JSON, refusing duplicate keys, or raise a 400.

    orjson first; the stdlib parser (with a duplicate-key hook) only when orjson refuses
    the body (to give the same message, and to read NaN, a BOM or lone surrogates as it
    always has) or when the cheap duplicate-key test below cannot rule duplicates out.
    """
    raw = body if type(body) is bytes else bytes(body)
    if _LONG_NUMBER not in raw.translate(_DIGITS_TO_ZERO):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if _no_duplicate_keys(raw, doc):
                return doc
    return _load_json_exact(raw)


def quick_json(body: bytes) -> Any:
    """orjson's parse of ``body``, or None when only ``load_json`` may decide (orjson
    refuses it, or a long integer that orjson would read as a float). Duplicate keys
    are the caller's to rule out (see ``protocols/fast.py``)."""
    if _LONG_NUMBER in body.translate(_DIGITS_TO_ZERO):
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _no_duplicate_keys(raw: bytes, doc: Any) -> bool:
    """True only if ``raw`` (which parsed to ``doc``) has no object with a repeated key.

    Each key in the text is followed by exactly one ``:`` outside strings, so the body's
    colons are at least the text's keys, and duplicates are keys that ``doc`` lost. If
    the colons equal ``doc``'s keys (plus the colons inside its strings, counted only when
    no ``\\u`` escape could have spelt one), nothing was lost.
    """
    colons = raw.count(b":")
    if colons == _key_count(doc, False):
        return True
    return b"\\u" not in raw and colons == _key_count(doc, True)


def _key_count(doc: Any, strings: bool) -> int:
    """Keys of every object in ``doc``, plus the colons in its strings if ``strings``."""
    total = 0
    stack = [doc]
    pop, push = stack.pop, stack.append
    while stack:  # a loop, not recursion: orjson nests deeper than Python's stack allows
        node = pop()
        kind = type(node)
        if kind is dict:
            total += len(node)
            if strings:
                total += sum(key.count(":") for key in node)
            node = node.values()
        elif kind is str:
            total += node.count(":")
            continue
        elif kind is not list:
            continue
        for value in node:
            kind = type(value)
            if kind is dict or kind is list or (strings and kind is str):
                push(value)
    return total


def _load_json_exact(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"the request body is not valid UTF-8 (byte {exc.start}): JSON must be UTF-8"
        ) from None
    if not text.strip():
        raise InvalidInputError("the request body is empty: expected a JSON document")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise InvalidInputError("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int strings over Python's digit limit
        raise InvalidInputError(f"invalid JSON: {str(exc)[:200]}") from None


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def expect_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else a 400 saying what ``what`` should have been."""
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a JSON object, got {json_type(value)}")
    return value


def check_keys(obj: dict[str, Any], allowed: tuple[str, ...], what: str, *, hint: str = "") -> None:
    """Refuse keys outside ``allowed`` (typos should not be silently ignored)."""
    unknown = [key for key in obj if key not in allowed]
    if unknown:
        names = ", ".join(shown(k) for k in unknown[:5])
        raise InvalidInputError(
            f"{what} has unknown key{'s' if len(unknown) > 1 else ''} {names}; "
            f"accepted keys: {', '.join(allowed)}{hint}"
        )


def shown(value: Any, limit: int = 80) -> str:
    """A short repr of client-supplied text (repr escapes control and surrogate chars)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["check_keys", "expect_object", "is_unicode", "json_type", "load_json", "quick_json",
           "shown"]
