"""Every error modelport raises, in one tree.

Each class knows the HTTP status a server answers with and the exit code the CLI
returns, so the edges (HTTP handlers, the CLI) render errors in one place and no
builtin exception is ever mapped to a status by accident::

    ModelportError                      500  exit 1
    ├── InvalidInputError               400  exit 2
    │   ├── InvalidNameError
    │   ├── InvalidURIError
    │   ├── SignatureError              (the data does not match the model's signature)
    │   ├── UnsupportedModelError       (no flavor can store or read this model)
    │   └── PayloadTooLargeError    413 (body or rows over the server's limits)
    ├── UnsupportedMediaTypeError       415  exit 2
    ├── NotFoundError                   404  exit 3
    │   ├── ModelNotFoundError
    │   ├── VersionNotFoundError
    │   ├── AliasNotFoundError
    │   ├── ArtifactNotFoundError
    │   ├── DeploymentNotFoundError
    │   └── RolloutNotFoundError
    ├── ConflictError                   409  exit 4
    │   └── GateFailedError                  exit 10 (a quality gate refused the version)
    ├── ArtifactIntegrityError          500  exit 5  (stored bytes differ from their digest)
    ├── AuditChainError                 500  exit 12 (an audit record was edited, deleted
    │                                                 or reordered)
    ├── UntrustedModelError             403  exit 6  (pickle, custom code, untrusted skops types)
    ├── AuthenticationError             401  exit 13 (no token, or not a valid one)
    ├── PermissionDeniedError           403  exit 14 (a valid token outside its role or models)
    ├── RateLimitedError                429  exit 8  (too many requests: retry after a while)
    ├── DatabaseSchemaError             500  exit 7  (database newer than this code)
    ├── ConfigurationError              500  exit 7
    ├── PipelineStepError               500  exit 11 (a pipeline step failed; a modelport
    │   │                                             step's own exit code wins)
    │   └── TrialsFailedError                    (every trial of a tuning study failed)
    ├── ModelNotReadyError              503  exit 8  (still loading or warming up)
    ├── OverloadedError                 503  exit 8  (queue full: retry later)
    ├── StorageUnavailableError         503  exit 8  (the artifact store is unreachable)
    ├── RequestTimeoutError             504  exit 8
    └── ModelExecutionError             500  exit 9  (the model itself failed)
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


class PayloadTooLargeError(InvalidInputError):
    """A request body or row count exceeds the server's limits."""

    http_status = 413


class UnsupportedMediaTypeError(ModelportError):
    """A request's Content-Type is not one the protocol accepts."""

    http_status = 415
    exit_code = 2


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


class DeploymentNotFoundError(NotFoundError):
    """No deployment (endpoint desired state) has this name."""


class RolloutNotFoundError(NotFoundError):
    """No rollout with this id, or no active rollout on the endpoint."""


class ConflictError(ModelportError):
    """The request conflicts with the current state (duplicate, deleted, in use)."""

    http_status = 409
    exit_code = 4


class GateFailedError(ConflictError):
    """A quality gate refused the version (or a rollout required a gate it never passed)."""

    exit_code = 10


class ArtifactIntegrityError(ModelportError):
    """Stored bytes no longer match their sha256 digest: tampered or truncated."""

    http_status = 500
    exit_code = 5


class AuditChainError(ModelportError):
    """The audit log's hash chain is broken: a record was edited, deleted or reordered,
    or its head row is gone."""

    http_status = 500
    exit_code = 12


class UntrustedModelError(ModelportError):
    """Loading would run code or types that nobody declared trusted."""

    http_status = 403
    exit_code = 6


class AuthenticationError(ModelportError):
    """No token was sent, or the one sent is unknown, wrong, revoked or expired."""

    http_status = 401
    exit_code = 13


class PermissionDeniedError(ModelportError):
    """A valid token whose role or model pattern does not cover the request. The message
    never says whether the model exists."""

    http_status = 403
    exit_code = 14


class RateLimitedError(ModelportError):
    """Too many requests from one token (or failed logins from one address); retry after
    ``retry_after`` seconds."""

    http_status = 429
    exit_code = 8

    def __init__(self, message: str, retry_after: float = 1.0, **details: object) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class DatabaseSchemaError(ModelportError):
    """The database schema is newer than this code, or not a modelport database."""

    http_status = 500
    exit_code = 7


class ConfigurationError(ModelportError):
    """Settings are missing or contradict each other."""

    http_status = 500
    exit_code = 7


class PipelineStepError(ModelportError):
    """A step of ``modelport pipeline run`` failed: a command's non-zero exit, a timeout,
    a rollout that was not promoted. When the step was a modelport command, its own
    exit code is the pipeline's (e.g. 10 for a failed gate)."""

    exit_code = 11

    def __init__(self, message: str, exit_code: int | None = None, **details: object) -> None:
        super().__init__(message, **details)
        if exit_code is not None:
            self.exit_code = exit_code


class TrialsFailedError(PipelineStepError):
    """``modelport tune`` ended without one complete trial: nothing was registered."""


class ModelNotReadyError(ModelportError):
    """The model is not loaded (yet): loading, warming up, or failed to load."""

    http_status = 503
    exit_code = 8


class StorageUnavailableError(ModelportError):
    """The artifact store (e.g. an S3 endpoint) cannot be reached right now."""

    http_status = 503
    exit_code = 8


class OverloadedError(ModelportError):
    """The model's queue is full; the client should retry after ``retry_after`` seconds."""

    http_status = 503
    exit_code = 8

    def __init__(self, message: str, retry_after: float = 1.0, **details: object) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class RequestTimeoutError(ModelportError):
    """The request took longer than the server's request timeout."""

    http_status = 504
    exit_code = 8


class ModelExecutionError(ModelportError):
    """The model raised while predicting; details go to the log, never to the client."""

    http_status = 500
    exit_code = 9


__all__ = [
    "AliasNotFoundError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "AuditChainError",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseSchemaError",
    "DeploymentNotFoundError",
    "GateFailedError",
    "InvalidInputError",
    "InvalidNameError",
    "InvalidURIError",
    "ModelExecutionError",
    "ModelNotFoundError",
    "ModelNotReadyError",
    "ModelportError",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PipelineStepError",
    "RateLimitedError",
    "RequestTimeoutError",
    "RolloutNotFoundError",
    "SignatureError",
    "StorageUnavailableError",
    "TrialsFailedError",
    "UnsupportedMediaTypeError",
    "UnsupportedModelError",
    "UntrustedModelError",
    "VersionNotFoundError",
]
