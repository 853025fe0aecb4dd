"""Container image references, checked as Docker's reference grammar defines them.

``[HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST]``: lowercase path components separated by
``/`` with ``.``, ``_``, ``__`` or dashes inside; a tag of word characters, dots and
dashes up to 128; a digest of 64 hex digits. A deployment must say which image it
runs, so a reference must be pinned: a tag other than ``latest``, or a digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.errors import InvalidInputError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?P<name>(?:(?P<host>{_HOST})/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?")
_MAX_NAME = 255


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference."""

    name: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")


def parse_image(ref: str, what: str = "--image") -> ImageRef:
    """``ref`` parsed and pinned, or InvalidInputError saying what is wrong with it."""
    text = ref.strip() if isinstance(ref, str) else ""
    if not text:
        raise InvalidInputError(f"{what}: empty image reference")
    match = _REFERENCE.fullmatch(text)
    if match is None:
        raise InvalidInputError(
            f"{what} {ref[:200]!r} is not a valid image reference: expected "
            "[REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST] with a lowercase NAME, e.g. "
            "registry.example.com/ml/iris:3")
    name = match["name"]
    if len(name) > _MAX_NAME:
        raise InvalidInputError(f"{what}: the image name is longer than {_MAX_NAME} characters")
    if match["digest"] is None and match["tag"] in (None, "latest"):
        raise InvalidInputError(
            f"{what} {text!r} is not pinned: give a tag other than 'latest' or a "
            "@sha256: digest, so every replica runs the same image")
    return ImageRef(name, match["tag"], match["digest"])
