"""Content-addressed blob storage: bytes in, a sha256 digest out, verified on every read.

The interface is deliberately small (put, get, exists, delete, verify) so that an
S3-compatible store can implement it on top of fsspec later without other modules
noticing. Below it, each store also moves raw objects (``write_object``,
``read_object``, ``peek``): what a wrapping store such as
``artifacts.encryption.EncryptedArtifactStore`` keeps under a digest that is not the
hash of the stored bytes themselves.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from modelport.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    InvalidInputError,
)

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 1 << 20


def digest_bytes(data: bytes | memoryview) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a well-formed ``sha256:<64 hex>`` string, else raise."""
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise InvalidInputError(f"malformed digest {str(digest)[:80]!r}: expected sha256:<64 hex>")
    return digest


class ArtifactStore(Protocol):
    """Immutable blobs addressed by the sha256 of their content."""

    def put(self, data: bytes) -> str:
        """Store ``data`` (once, whatever the number of calls); return its digest."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``, after checking they still hash to it."""
        ...

    def exists(self, digest: str) -> bool:
        """Whether an object is stored under ``digest``."""
        ...

    def delete(self, digest: str) -> None:
        """Remove the object (no error if absent)."""
        ...

    def describe(self) -> str:
        """Where the store keeps its objects, for messages."""
        ...


class ObjectStore(Protocol):
    """Raw objects under digests, unchecked: the layer a wrapping store writes through."""

    def write_object(self, digest: str, data: bytes) -> None:
        """Store ``data`` under ``digest`` atomically (replacing what was there)."""
        ...

    def read_object(self, digest: str) -> bytes:
        """The bytes under ``digest`` as stored (ArtifactNotFoundError if absent)."""
        ...

    def peek(self, digest: str, n: int) -> tuple[int, bytes] | None:
        """(size, first ``n`` bytes) of the object, or None if absent."""
        ...

    def exists(self, digest: str) -> bool:
        """Whether an object is stored under ``digest``."""
        ...

    def delete(self, digest: str) -> None:
        """Remove the object (no error if absent)."""
        ...

    def describe(self) -> str:
        """Where the objects are, for messages."""
        ...


class LocalArtifactStore:
    """Blobs as files under ``root/sha256/ab/<hex>``, written by temp file + atomic rename."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self._tmp = self.root / "tmp"

    def describe(self) -> str:
        """The root folder."""
        return str(self.root)

    def path_for(self, digest: str) -> Path:
        """The file that holds ``digest`` (whether or not it exists)."""
        hexd = check_digest(digest)[7:]
        return self.root / "sha256" / hexd[:2] / hexd

    def put(self, data: bytes) -> str:
        """Write ``data`` atomically unless an intact copy is already there."""
        digest = digest_bytes(data)
        target = self.path_for(digest)
        if target.is_file() and target.stat().st_size == len(data):
            return digest  # dedup: identical content is stored once
        self.write_object(digest, data)
        return digest

    def write_object(self, digest: str, data: bytes) -> None:
        """Write by temp file, fsync and rename: a reader sees the old object or the new
        one, never a part."""
        target = self.path_for(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, 0o444)  # blobs are immutable; make accidental edits fail
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    def read_object(self, digest: str) -> bytes:
        """The file's bytes, unchecked."""
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(
                f"artifact {digest} is missing from {self.root}", digest=digest
            ) from None

    def peek(self, digest: str, n: int) -> tuple[int, bytes] | None:
        """Size and first ``n`` bytes of the file, or None."""
        try:
            with self.path_for(digest).open("rb") as fh:
                return os.fstat(fh.fileno()).st_size, fh.read(n)
        except FileNotFoundError:
            return None

    def get(self, digest: str) -> bytes:
        """Read and verify; a changed or truncated file raises ArtifactIntegrityError."""
        data = self.read_object(digest)
        actual = digest_bytes(data)
        if actual != digest:
            _refuse_encrypted(digest, data)
            raise ArtifactIntegrityError(
                f"artifact {digest} is corrupt: its content now hashes to {actual} "
                f"({len(data)} bytes at {self.path_for(digest)}); it was changed or "
                "truncated after it was stored",
                digest=digest,
            )
        return data

    def exists(self, digest: str) -> bool:
        """Whether the file for ``digest`` is present."""
        return self.path_for(digest).is_file()

    def delete(self, digest: str) -> None:
        """Remove the file for ``digest`` if present."""
        self.path_for(digest).unlink(missing_ok=True)


def _refuse_encrypted(digest: str, data: bytes) -> None:
    """An encrypted blob read without the key: say so, rather than call it corrupt."""
    from modelport.artifacts.encryption import refuse_without_key

    refuse_without_key(digest, data)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class MemoryArtifactStore:
    """Blobs in a dict: for tests and throwaway registries; same checks as on disk."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def describe(self) -> str:
        """Always ``memory``."""
        return "memory"

    def put(self, data: bytes) -> str:
        """Keep a copy of ``data``."""
        digest = digest_bytes(data)
        self.objects.setdefault(digest, bytes(data))
        return digest

    def write_object(self, digest: str, data: bytes) -> None:
        """Keep ``data`` under ``digest`` as given."""
        self.objects[check_digest(digest)] = bytes(data)

    def read_object(self, digest: str) -> bytes:
        """The object as kept, unchecked."""
        try:
            return self.objects[check_digest(digest)]
        except KeyError:
            raise ArtifactNotFoundError(f"artifact {digest} is missing", digest=digest) from None

    def peek(self, digest: str, n: int) -> tuple[int, bytes] | None:
        """Size and first ``n`` bytes, or None."""
        data = self.objects.get(check_digest(digest))
        return None if data is None else (len(data), data[:n])

    def get(self, digest: str) -> bytes:
        """The bytes, verified against the digest."""
        data = self.read_object(digest)
        if digest_bytes(data) != digest:
            _refuse_encrypted(digest, data)
            raise ArtifactIntegrityError(f"artifact {digest} is corrupt", digest=digest)
        return data

    def exists(self, digest: str) -> bool:
        """Whether ``digest`` is held."""
        return check_digest(digest) in self.objects

    def delete(self, digest: str) -> None:
        """Forget ``digest``."""
        self.objects.pop(check_digest(digest), None)
