"""Every error modelport raises, in one tree.

Each class knows the HTTP status a server answers with and the exit code the CLI
returns, so the edges (HTTP handlers, the CLI) render errors in one place and no
builtin exception is ever mapped to a status by accident::

    ModelportError                      500  exit 1
    ├── InvalidInputError               400  exit 2
    │   ├── InvalidNameError
    │   ├── InvalidURIError
    │   ├── SignatureError              (the data does not match the model's signature)
    │   └── UnsupportedModelError       (no flavor can store or read this model)
    ├── NotFoundError                   404  exit 3
    │   ├── ModelNotFoundError
    │   ├── VersionNotFoundError
    │   ├── AliasNotFoundError
    │   └── ArtifactNotFoundError
    ├── ConflictError                   409  exit 4
    ├── ArtifactIntegrityError          500  exit 5  (stored bytes differ from their digest)
    ├── UntrustedModelError             403  exit 6  (pickle, custom code, untrusted skops types)
    ├── DatabaseSchemaError             500  exit 7  (database newer than this code)
    └── ConfigurationError              500  exit 7
"""

from __future__ import annotations

from typing import Any


class ModelportError(Exception):
    """Base of every error modelport raises on purpose."""

    http_status: int = 500
    exit_code: int = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class InvalidInputError(ModelportError):
    """The caller sent something malformed or impossible."""

    http_status = 400
    exit_code = 2


class InvalidNameError(InvalidInputError):
    """A model name or alias does not follow the naming rule."""


class InvalidURIError(InvalidInputError):
    """A model URI cannot be parsed."""


class SignatureError(InvalidInputError):
    """Input data does not match the model's signature (column, dtype or shape)."""


class UnsupportedModelError(InvalidInputError):
    """No flavor can store or read this model or file."""


class NotFoundError(ModelportError):
    """Something named does not exist."""

    http_status = 404
    exit_code = 3


class ModelNotFoundError(NotFoundError):
    """No registered model has this name."""


class VersionNotFoundError(NotFoundError):
    """The model exists but not this version."""


class AliasNotFoundError(NotFoundError):
    """The model exists but has no such alias."""


class ArtifactNotFoundError(NotFoundError):
    """The artifact store holds no object with this digest."""


class ConflictError(ModelportError):
    """The request conflicts with the current state (duplicate, deleted, in use)."""

    http_status = 409
    exit_code = 4


class ArtifactIntegrityError(ModelportError):
    """Stored bytes no longer match their sha256 digest: tampered or truncated."""

    http_status = 500
    exit_code = 5


class UntrustedModelError(ModelportError):
    """Loading would run code or types that nobody declared trusted."""

    http_status = 403
    exit_code = 6


class DatabaseSchemaError(ModelportError):
    """The database schema is newer than this code, or not a modelport database."""

    http_status = 500
    exit_code = 7


class ConfigurationError(ModelportError):
    """Settings are missing or contradict each other."""

    http_status = 500
    exit_code = 7


__all__ = [
    "AliasNotFoundError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseSchemaError",
    "InvalidInputError",
    "InvalidNameError",
    "InvalidURIError",
    "ModelNotFoundError",
    "ModelportError",
    "NotFoundError",
    "SignatureError",
    "UnsupportedModelError",
    "UntrustedModelError",
    "VersionNotFoundError",
]
