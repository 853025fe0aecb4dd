"""Model and dataset names and URIs.

Models: ``models:/iris/3``, ``models:/iris@champion``, ``iris/3``, ``iris@champion``.
Datasets: ``datasets:/iris-training/2``, ``datasets:/iris-training`` (the newest),
``iris-training/2`` where only a dataset can be meant; datasets have no aliases.

Names are validated here once, so that no other module has to think about path
tricks: a valid name can never contain ``/``, ``..`` as a whole, NUL or spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.errors import InvalidNameError, InvalidURIError

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SCHEME = "models:/"
DATASET_SCHEME = "datasets:/"


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
        number = _version(ver, uri, ", 'latest' or @ALIAS")
        return ModelURI(name) if number is None else ModelURI(name, version=number)
    if "/" not in body:
        return ModelURI(validate_name(body))
    raise InvalidURIError(
        f"invalid model URI {uri!r}: expected models:/NAME/VERSION, models:/NAME@ALIAS, "
        "NAME/VERSION or NAME@ALIAS"
    )


def _version(text: str, uri: str, alternatives: str) -> int | None:
    """A version number from a URI (None for ``latest``)."""
    if text == "latest":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise InvalidURIError(
            f"invalid version {text!r} in {uri!r}: expected a positive number{alternatives}"
        )
    return int(text)


@dataclass(frozen=True)
class DatasetURI:
    """A parsed reference to one dataset version, by number or the newest."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{DATASET_SCHEME}{self.name}/{self.version or 'latest'}"

    @property
    def short(self) -> str:
        """The short form: ``iris-training/2`` (or just the name for the newest)."""
        return self.name if self.version is None else f"{self.name}/{self.version}"


def is_dataset_uri(text: object) -> bool:
    """Whether ``text`` is written as a dataset URI (``datasets:/...``)."""
    return isinstance(text, str) and text.startswith(DATASET_SCHEME)


def parse_dataset_uri(uri: str) -> DatasetURI:
    """Parse ``datasets:/NAME/VERSION``, ``datasets:/NAME[/latest]``, ``NAME/VERSION``
    or ``NAME``."""
    if not isinstance(uri, str) or not uri:
        raise InvalidURIError("empty dataset URI; expected e.g. datasets:/iris-training/2")
    body = uri[len(DATASET_SCHEME):] if uri.startswith(DATASET_SCHEME) else uri
    if "@" in body:
        raise InvalidURIError(f"invalid dataset URI {uri!r}: datasets have no aliases; "
                              "expected datasets:/NAME/VERSION")
    if body.count("/") == 1:
        name, _, ver = body.partition("/")
        return DatasetURI(validate_name(name, "dataset name"), _version(ver, uri, " or 'latest'"))
    if "/" not in body:
        return DatasetURI(validate_name(body, "dataset name"))
    raise InvalidURIError(f"invalid dataset URI {uri!r}: expected datasets:/NAME/VERSION, "
                          "datasets:/NAME or NAME/VERSION")
