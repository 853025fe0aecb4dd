"""Model names and model URIs.

Forms: ``models:/iris/3``, ``models:/iris@champion``, ``iris/3``, ``iris@champion``.

Names are validated here once, so that no other module has to think about path
tricks: a valid name can never contain ``/``, ``..`` as a whole, NUL or spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.errors import InvalidNameError, InvalidURIError

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SCHEME = "models:/"


def validate_name(name: str, what: str = "model name") -> str:
    """Return ``name`` if it follows ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``, else raise."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        shown = repr(name)[:80]
        raise InvalidNameError(
            f"invalid {what} {shown}: use 1-128 characters from A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return name


def validate_alias(alias: str) -> str:
    """Aliases follow the model-name rule and must not look like a version number."""
    validate_name(alias, "alias")
    if alias.isascii() and alias.isdigit():
        raise InvalidNameError(f"invalid alias {alias!r}: an alias cannot be a number")
    if alias.lower() == "latest":
        raise InvalidNameError("invalid alias 'latest': it is reserved for the newest version")
    return alias


@dataclass(frozen=True)
class ModelURI:
    """A parsed reference to one model version, by number, by alias, or the latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/latest"

    @property
    def short(self) -> str:
        """The short form users type: ``iris/3`` or ``iris@champion``."""
        return str(self).removeprefix(_SCHEME)


def parse_uri(uri: str) -> ModelURI:
    """Parse a model URI in its long (``models:/...``) or short form."""
    if not isinstance(uri, str) or not uri:
        raise InvalidURIError("empty model URI; expected e.g. models:/iris/3 or iris@champion")
    body = uri[len(_SCHEME) :] if uri.startswith(_SCHEME) else uri
    if "@" in body:
        name, _, alias = body.partition("@")
        if "/" in alias or not alias:
            raise InvalidURIError(f"invalid model URI {uri!r}: expected NAME@ALIAS")
        return ModelURI(validate_name(name), alias=validate_alias(alias))
    if body.count("/") == 1:
        name, _, ver = body.partition("/")
        validate_name(name)
        if ver == "latest":
            return ModelURI(name)
        if not (ver.isascii() and ver.isdigit()) or len(ver) > 9 or int(ver) < 1:
            raise InvalidURIError(
                f"invalid version {ver!r} in {uri!r}: expected a positive number, "
                "'latest' or @ALIAS"
            )
        return ModelURI(name, version=int(ver))
    if "/" not in body:
        return ModelURI(validate_name(body))
    raise InvalidURIError(
        f"invalid model URI {uri!r}: expected models:/NAME/VERSION, models:/NAME@ALIAS, "
        "NAME/VERSION or NAME@ALIAS"
    )
