"""Content-addressed blobs in an S3-compatible bucket (AWS, MinIO, Ceph, moto), via s3fs.

The same guarantees as the local store:

- **content addressing**: ``s3://bucket/prefix/sha256/ab/<hex>``; a blob already there is
  not uploaded again;
- **no partial objects**: data is uploaded under ``prefix/tmp/<random>`` and only then
  copied, server side, to its address ("upload then commit"), so a reader either finds
  the whole object under a digest or nothing; the temp object is removed afterwards;
- **concurrent writers** of the same content are safe: they copy identical bytes to the
  same key, and the last copy wins with the same content;
- **verified on every read**: the bytes are re-hashed whether they come from the bucket
  or from the cache.

A read-through local cache (``BlobCache``) with a size bound keeps recently read blobs
on disk, so a restarted server does not download its models again.

The raw-object methods (``write_object``, ``read_object``, ``peek``) are what
``EncryptedArtifactStore`` writes through; they bypass the cache, which verifies
entries against their digest and so could hold only plaintext: with encryption on,
blobs are downloaded on every load and never stored in the clear on local disk.

Credentials come from the usual AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, profiles); the endpoint from
``MODELPORT_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from modelport.artifacts.cache import BlobCache
from modelport.artifacts.store import check_digest, digest_bytes
from modelport.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ConfigurationError,
    StorageUnavailableError,
)

T = TypeVar("T")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (bucket, "some/prefix"); the bucket is required."""
    if not url.startswith("s3://"):
        raise ConfigurationError(f"not an S3 location: {url!r} (expected s3://bucket/prefix)")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket or any(c in bucket for c in " \\?#"):
        raise ConfigurationError(f"invalid S3 location {url!r}: no valid bucket name")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ConfigurationError(f"invalid S3 location {url!r}: '.' or '..' in the prefix")
    return bucket, "/".join(parts)


class S3ArtifactStore:
    """Blobs as objects under ``s3://bucket/prefix``, with a local read-through cache."""

    def __init__(self, url: str, *, endpoint_url: str | None = None,
                 cache: BlobCache | None = None, fs: Any = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.endpoint_url = endpoint_url
        self.cache = cache
        if fs is None:
            import s3fs

            # No listings cache: existence must be asked of the bucket, not remembered;
            # no shared instance: fsspec would otherwise hand every store the same one.
            fs = s3fs.S3FileSystem(
                use_listings_cache=False, skip_instance_cache=True,
                client_kwargs={"endpoint_url": endpoint_url} if endpoint_url else {})
        self.fs = fs

    def describe(self) -> str:
        """The bucket and prefix (and endpoint, when not AWS)."""
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _path(self, *parts: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, *parts) if p)

    def key_for(self, digest: str) -> str:
        """The object path (bucket/key) that holds ``digest``."""
        hexd = check_digest(digest)[7:]
        return self._path("sha256", hexd[:2], hexd)

    def put(self, data: bytes) -> str:
        """Upload ``data`` under a temp key, then commit it to its address."""
        digest = digest_bytes(data)
        key = self.key_for(digest)
        if not self._call(lambda: self.fs.exists(key), key):
            self.write_object(digest, data)
        if self.cache is not None:
            self.cache.put(digest, data)
        return digest

    def get(self, digest: str) -> bytes:
        """The blob's bytes (from the cache when it holds an intact copy), verified."""
        key = self.key_for(digest)
        if self.cache is not None:
            cached = self.cache.get(digest)
            if cached is not None:
                return cached
        try:
            data: bytes = self._call(lambda: self.fs.cat_file(key), key)
        except ArtifactNotFoundError:
            raise ArtifactNotFoundError(
                f"artifact {digest} not found in {self.describe()}") from None
        if digest_bytes(data) != digest:
            raise ArtifactIntegrityError(
                f"artifact {digest} in {self.describe()} is corrupt: its bytes hash to "
                f"{digest_bytes(data)}")
        if self.cache is not None:
            self.cache.put(digest, data)
        return data

    def write_object(self, digest: str, data: bytes) -> None:
        """Upload ``data`` under a temp key, then commit it (server-side copy) to the
        address of ``digest``, replacing what was there."""
        key = self.key_for(digest)
        tmp = self._path("tmp", secrets.token_hex(16))
        self._call(lambda: self.fs.pipe_file(tmp, data), tmp)
        try:
            self._call(lambda: self.fs.copy(tmp, key), key)
        finally:
            # A stray temp object is harmless; never let it mask the real outcome.
            with contextlib.suppress(OSError):
                self.fs.rm_file(tmp)
        if self.cache is not None:
            self.cache.delete(digest)  # whatever it held is no longer what is stored

    def read_object(self, digest: str) -> bytes:
        """The object's bytes as stored, unchecked, from the bucket (never the cache)."""
        key = self.key_for(digest)
        try:
            data: bytes = self._call(lambda: self.fs.cat_file(key), key)
        except ArtifactNotFoundError:
            raise ArtifactNotFoundError(
                f"artifact {digest} not found in {self.describe()}") from None
        return data

    def peek(self, digest: str, n: int) -> tuple[int, bytes] | None:
        """(size, first ``n`` bytes) of the object, or None if absent."""
        key = self.key_for(digest)
        try:
            size = int(self._call(lambda: self.fs.info(key), key)["size"])
            head: bytes = self._call(lambda: self.fs.cat_file(key, start=0, end=n), key) \
                if size else b""
        except ArtifactNotFoundError:
            return None
        return size, head

    def exists(self, digest: str) -> bool:
        """Whether the bucket holds an object under ``digest``."""
        key = self.key_for(digest)
        return bool(self._call(lambda: self.fs.exists(key), key))

    def delete(self, digest: str) -> None:
        """Remove the object and its cached copy (no error if absent)."""
        key = self.key_for(digest)
        if self.cache is not None:
            self.cache.delete(digest)
        with contextlib.suppress(ArtifactNotFoundError):
            self._call(lambda: self.fs.rm_file(key), key)

    def _call(self, fn: Callable[[], T], key: str) -> T:
        """Run one S3 operation, turning its failures into modelport errors."""
        try:
            return fn()
        except FileNotFoundError as exc:
            if _missing_bucket(exc):
                raise ConfigurationError(
                    f"bucket {self.bucket!r} does not exist ({self.describe()})") from None
            raise ArtifactNotFoundError(f"s3://{key} not found") from None
        except PermissionError as exc:
            raise ConfigurationError(
                f"access to s3://{key} denied: check AWS_ACCESS_KEY_ID/"
                f"AWS_SECRET_ACCESS_KEY or the bucket policy ({exc})") from None
        except (OSError, ValueError) as exc:
            raise StorageUnavailableError(
                f"the artifact store {self.describe()} failed on s3://{key}: {exc}") from None
        except Exception as exc:  # botocore raises its own types (e.g. EndpointConnectionError)
            if type(exc).__module__.startswith(("botocore", "aiobotocore")):
                raise StorageUnavailableError(
                    f"the artifact store {self.describe()} is unreachable: {exc}") from None
            raise


def _missing_bucket(exc: FileNotFoundError) -> bool:
    return "NoSuchBucket" in str(exc) or "bucket does not exist" in str(exc).lower()


def from_location(location: str, home: Path) -> S3ArtifactStore:
    """The store for ``MODELPORT_ARTIFACTS=s3://...``: endpoint and cache from the
    environment (``MODELPORT_ARTIFACT_CACHE``: a folder, or ``off``;
    ``MODELPORT_ARTIFACT_CACHE_BYTES``: the bound, default 2 GiB)."""
    env = os.environ
    endpoint = env.get("MODELPORT_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL") or None
    where = env.get("MODELPORT_ARTIFACT_CACHE", str(home / "cache" / "artifacts"))
    cache = None
    if where.lower() != "off":
        raw = env.get("MODELPORT_ARTIFACT_CACHE_BYTES", str(2 << 30))
        try:
            limit = int(raw)
        except ValueError:
            raise ConfigurationError(
                f"MODELPORT_ARTIFACT_CACHE_BYTES={raw!r} is not a number of bytes") from None
        cache = BlobCache(Path(where), limit)
    return S3ArtifactStore(location, endpoint_url=endpoint, cache=cache)


__all__ = ["S3ArtifactStore", "from_location", "parse_s3_url"]
