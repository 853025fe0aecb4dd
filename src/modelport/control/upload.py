"""Receiving an uploaded model file: streamed to disk under a size cap, digest-checked.

The body is never held whole in memory: each chunk is counted, hashed and written as it
arrives, and the upload is refused (413) the moment it passes the cap. A digest the
client declares (``X-Content-SHA256: HEX`` or ``Digest: sha-256=BASE64``) must match
the bytes received (400 otherwise); the caller registers nothing unless both hold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from modelport.errors import InvalidInputError, PayloadTooLargeError

DEFAULT_MAX_UPLOAD = 1 << 30
METADATA_HEADER = "x-modelport-metadata"
DIGEST_HEADER = "x-content-sha256"
# A bare file name: no separators, no leading dot, no NUL, nothing a shell or a file
# system reads specially. The suffix is what the flavor detection looks at.
_FILENAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX_RE = re.compile(r"[0-9a-f]{64}")
_METADATA_KEYS = frozenset({"metrics", "params", "tags", "description", "input_example"})


def check_filename(name: str | None) -> str:
    """``name`` if it is a plain file name (e.g. ``model.onnx``), else InvalidInputError."""
    if not name:
        raise InvalidInputError("the upload needs ?filename=NAME.EXT (e.g. model.onnx): its "
                                "suffix tells which kind of model file it is")
    if not _FILENAME_RE.fullmatch(name) or ".." in name:
        raise InvalidInputError(
            f"invalid upload file name {repr(name)[:80]}: use 1-128 characters of "
            "A-Z a-z 0-9 . _ - starting with a letter or digit, no path")
    return name


def expected_digest(headers: Mapping[str, str]) -> str | None:
    """The sha256 (hex) the client says the body has, or None if it says none."""
    raw = headers.get(DIGEST_HEADER)
    if raw is not None:
        value = raw.strip().lower().removeprefix("sha256:")
        if not _HEX_RE.fullmatch(value):
            raise InvalidInputError("X-Content-SHA256 must be 64 hex digits (the sha256 of "
                                    "the body)")
        return value
    for part in (headers.get("digest") or "").split(","):
        algo, sep, value = part.strip().partition("=")
        if sep and algo.lower() == "sha-256":
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                decoded = b""
            if len(decoded) != 32:
                raise InvalidInputError("Digest: sha-256= must be the base64 of 32 bytes")
            return decoded.hex()
    return None


def parse_metadata(header: str | None) -> dict[str, Any]:
    """The ``X-Modelport-Metadata`` header: base64url of a JSON object with any of
    metrics, params, tags, description, input_example."""
    if not header:
        return {}
    try:
        data = orjson.loads(base64.urlsafe_b64decode(header.strip() + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidInputError("X-Modelport-Metadata must be base64url-encoded JSON") from None
    if not isinstance(data, dict):
        raise InvalidInputError("X-Modelport-Metadata must be a JSON object")
    unknown = sorted(set(data) - _METADATA_KEYS)
    if unknown:
        raise InvalidInputError(f"unknown upload metadata: {', '.join(unknown)} (use "
                                f"{', '.join(sorted(_METADATA_KEYS))})")
    for key in ("metrics", "params", "tags"):
        if not isinstance(data.get(key, {}), dict):
            raise InvalidInputError(f"upload metadata {key!r} must be a JSON object")
    if not isinstance(data.get("description", ""), str):
        raise InvalidInputError("upload metadata 'description' must be a string")
    return data


def encode_metadata(data: dict[str, Any]) -> str:
    """The header value ``parse_metadata`` reads."""
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


async def receive_to(chunks: AsyncIterator[bytes], path: Path, cap: int,
                     declared: str | None = None) -> str:
    """Write ``chunks`` to the new file ``path``, at most ``cap`` bytes; the sha256 (hex)
    of what was written. PayloadTooLargeError as soon as the cap is passed."""
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise PayloadTooLargeError(_too_large(cap))
    digest = hashlib.sha256()
    seen = 0
    # Plain blocking writes: each chunk is at most tens of KiB into the page cache, cheaper
    # than a thread hop per chunk.
    with path.open("xb") as fh:
        async for chunk in chunks:
            seen += len(chunk)
            if seen > cap:
                raise PayloadTooLargeError(_too_large(cap))
            digest.update(chunk)
            fh.write(chunk)
    if seen == 0:
        raise InvalidInputError("empty upload: send the model file as the request body")
    return digest.hexdigest()


def _too_large(cap: int) -> str:
    return (f"upload exceeds the limit of {cap:,} bytes (serve.yaml "
            "limits.max_upload_bytes)")


__all__ = ["DEFAULT_MAX_UPLOAD", "DIGEST_HEADER", "METADATA_HEADER", "check_filename",
           "encode_metadata", "expected_digest", "parse_metadata", "receive_to"]
