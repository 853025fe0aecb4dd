"""Encryption at rest: an ArtifactStore that keeps every blob AES-256-GCM encrypted.

``EncryptedArtifactStore`` wraps a raw object store (``LocalArtifactStore``) behind the
same ``ArtifactStore`` interface, so bundles, the registry and serving do not notice.
The digest stays the sha256 of the *plaintext*: content addressing, dedup and
``modelport models verify`` work as before, and every read is still checked against it.

A stored object is a header and the ciphertext in chunks::

    b"MPENC" | format (1 byte, 1) | key id (8 bytes) | nonce (12 random bytes)
    chunk 0 | chunk 1 | ...      each: 16 MiB of plaintext (the last one less) + GCM tag

Chunk ``i`` is sealed with nonce ``nonce XOR i`` and associated data ``header | digest |
i | last?``: a blob cannot be moved to another digest, its chunks cannot be reordered,
dropped or cut at a chunk boundary, and its header (format, key id) cannot be edited
without the read failing. Chunks keep each AES-GCM call far below its per-call size
limit (2 GiB in ``cryptography``), since a model file may be up to 4 GiB.

The key id (the first 8 bytes of a domain-separated sha256 of the key) names the key
without revealing it, so a wrong key is a clear error rather than a failed tag.

Plaintext blobs written before encryption was turned on are still read (their sha256
is checked as ever, so this lets nobody inject content); writing the same content again
replaces such a blob by its encrypted form. A store read *without* the key raises a
clear error for each encrypted blob instead of calling it corrupt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from modelport.artifacts.store import ObjectStore, digest_bytes
from modelport.config import ENCRYPTION_KEY_ENV
from modelport.errors import ArtifactIntegrityError, ConfigurationError

MAGIC = b"MPENC"
FORMAT_VERSION = 1
KEY_ID_BYTES = 8
NONCE_BYTES = 12
HEADER_BYTES = len(MAGIC) + 1 + KEY_ID_BYTES + NONCE_BYTES
TAG_BYTES = 16
CHUNK_BYTES = 16 << 20
_KEY_ID_DOMAIN = b"modelport-encryption-key-id-v1\n"


class EncryptionKey:
    """A 256-bit AES key and its public id; the key never appears in repr or messages."""

    __slots__ = ("_key", "key_id", "raw_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError(f"an encryption key is 32 bytes, got {len(key)}")
        self._key = bytes(key)
        self.raw_id = hashlib.sha256(_KEY_ID_DOMAIN + self._key).digest()[:KEY_ID_BYTES]
        self.key_id = self.raw_id.hex()

    def __repr__(self) -> str:
        return f"<EncryptionKey {self.key_id}>"

    @classmethod
    def from_setting(cls, value: str, where: str = f"${ENCRYPTION_KEY_ENV}") -> EncryptionKey:
        """A key from a setting: the path of a file holding the key (base64 text or 32
        raw bytes), or the base64 text itself."""
        value = value.strip()
        path = Path(value).expanduser()
        if value and len(value) < 4096 and path.is_file():
            data = path.read_bytes()
            key = _b64_key(data.strip())
            if key is None and len(data) == 32:
                key = data
            if key is None:
                raise ConfigurationError(
                    f"{where}: {path} holds no encryption key (expected base64 of 32 bytes, "
                    "e.g. from `openssl rand -base64 32`, or 32 raw bytes)")
            return cls(key)
        key = _b64_key(value.encode())
        if key is None:  # the value is secret: never echo it
            raise ConfigurationError(
                f"{where} is neither an existing file nor base64 of 32 bytes "
                "(make one with `openssl rand -base64 32`)")
        return cls(key)

    @classmethod
    def from_env(cls) -> EncryptionKey | None:
        """The key ``MODELPORT_ENCRYPTION_KEY`` names, or None when it is unset/empty."""
        value = os.environ.get(ENCRYPTION_KEY_ENV, "")
        return cls.from_setting(value) if value.strip() else None

    def aead(self) -> AESGCM:
        """The cipher (for ``seal`` and ``open_sealed``)."""
        return AESGCM(self._key)


def _b64_key(text: bytes) -> bytes | None:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == 32 else None


def encrypted_size(plain_size: int) -> int:
    """The stored size of a blob of ``plain_size`` plaintext bytes."""
    chunks = max(1, -(-plain_size // CHUNK_BYTES))
    return HEADER_BYTES + plain_size + TAG_BYTES * chunks


def blob_key_id(data: bytes) -> str | None:
    """The key id in an encrypted blob's header, or None if it does not look encrypted."""
    if len(data) < HEADER_BYTES or not data.startswith(MAGIC):
        return None
    return data[len(MAGIC) + 1:len(MAGIC) + 1 + KEY_ID_BYTES].hex()


def refuse_without_key(digest: str, data: bytes) -> None:
    """Raise a clear error if ``data`` (which fails its digest) is an encrypted blob."""
    key_id = blob_key_id(data)
    if key_id is not None:
        raise ConfigurationError(
            f"artifact {digest} is encrypted (key {key_id}) but no encryption key is "
            f"configured: set {ENCRYPTION_KEY_ENV}", digest=digest)


def _nonce(base: bytes, index: int) -> bytes:
    counter = (0).to_bytes(4, "big") + index.to_bytes(8, "big")
    return bytes(a ^ b for a, b in zip(base, counter, strict=True))


def _aad(header: bytes, digest: str, index: int, last: bool) -> bytes:
    return header + digest.encode() + struct.pack(">QB", index, 1 if last else 0)


def seal(key: EncryptionKey, digest: str, data: bytes) -> bytes:
    """``data`` encrypted as one stored object bound to ``digest``."""
    aead = key.aead()
    nonce = secrets.token_bytes(NONCE_BYTES)
    header = MAGIC + bytes([FORMAT_VERSION]) + key.raw_id + nonce
    view = memoryview(data)
    starts = range(0, max(len(data), 1), CHUNK_BYTES)
    parts = [header]
    for index, start in enumerate(starts):
        last = start + CHUNK_BYTES >= len(data)
        chunk = bytes(view[start:start + CHUNK_BYTES])
        parts.append(aead.encrypt(_nonce(nonce, index), chunk, _aad(header, digest, index, last)))
    return b"".join(parts)


def open_sealed(key: EncryptionKey, digest: str, blob: bytes) -> bytes:
    """The plaintext of a stored object; raises naming the key or the tampering."""
    header = blob[:HEADER_BYTES]
    if blob[len(MAGIC)] != FORMAT_VERSION:
        raise ConfigurationError(
            f"artifact {digest} is encrypted in format {blob[len(MAGIC)]}, which this "
            f"modelport does not read (it reads format {FORMAT_VERSION})", digest=digest)
    found = blob_key_id(blob)
    if found != key.key_id:
        raise ConfigurationError(
            f"artifact {digest} was encrypted with key {found}, not the configured key "
            f"{key.key_id} (${ENCRYPTION_KEY_ENV})", digest=digest)
    aead = key.aead()
    body = memoryview(blob)[HEADER_BYTES:]
    step = CHUNK_BYTES + TAG_BYTES
    starts = range(0, max(len(body), 1), step)
    plain = []
    try:
        if len(body) < TAG_BYTES:
            raise InvalidTag
        for index, start in enumerate(starts):
            last = start + step >= len(body)
            plain.append(aead.decrypt(_nonce(header[-NONCE_BYTES:], index),
                                      bytes(body[start:start + step]),
                                      _aad(header, digest, index, last)))
    except InvalidTag:
        raise ArtifactIntegrityError(
            f"artifact {digest} fails decryption: its stored bytes were changed, truncated "
            "or moved from another digest", digest=digest) from None
    return b"".join(plain)


class EncryptedArtifactStore:
    """An ArtifactStore that encrypts every blob it writes into ``inner``."""

    def __init__(self, inner: ObjectStore, key: EncryptionKey) -> None:
        self.inner = inner
        self.key = key

    def describe(self) -> str:
        """Where the inner store keeps its objects."""
        return self.inner.describe()

    def put(self, data: bytes) -> str:
        """Encrypt and write ``data`` unless an intact encrypted copy is there already."""
        digest = digest_bytes(data)
        found = self.inner.peek(digest, HEADER_BYTES)
        if found is not None:
            size, head = found
            key_id = blob_key_id(head)
            if key_id == self.key.key_id and size == encrypted_size(len(data)):
                return digest  # dedup, as the plain store does it: by size
            if key_id not in (None, self.key.key_id) and not self._is_plain(digest):
                # Another key's blob: overwriting it would break every reader of it.
                raise ConfigurationError(
                    f"artifact {digest} was encrypted with key {key_id}, not the configured "
                    f"key {self.key.key_id} (${ENCRYPTION_KEY_ENV}); not overwriting it",
                    digest=digest)
        # New, truncated, or a plaintext blob from before encryption: (re)write it sealed.
        self.inner.write_object(digest, seal(self.key, digest, data))
        return digest

    def get(self, digest: str) -> bytes:
        """Decrypt and verify; plaintext blobs from before encryption are read, checked."""
        blob = self.inner.read_object(digest)
        if blob_key_id(blob) is None or self._plain_anyway(digest, blob):
            data = blob
        else:
            data = open_sealed(self.key, digest, blob)
        actual = digest_bytes(data)
        if actual != digest:
            raise ArtifactIntegrityError(
                f"artifact {digest} is corrupt: its content now hashes to {actual} "
                f"({len(data)} bytes in {self.inner.describe()})", digest=digest)
        return data

    def _plain_anyway(self, digest: str, blob: bytes) -> bool:
        # A plaintext file may begin with the magic bytes by chance (or by design); its
        # own hash tells it apart. Only checked when the header is not ours.
        return blob_key_id(blob) != self.key.key_id and digest_bytes(blob) == digest

    def _is_plain(self, digest: str) -> bool:
        return digest_bytes(self.inner.read_object(digest)) == digest

    def exists(self, digest: str) -> bool:
        """Whether an object is stored under ``digest``."""
        return self.inner.exists(digest)

    def delete(self, digest: str) -> None:
        """Remove the object (no error if absent)."""
        self.inner.delete(digest)


__all__ = [
    "ENCRYPTION_KEY_ENV", "EncryptedArtifactStore", "EncryptionKey", "blob_key_id",
    "encrypted_size", "open_sealed", "seal",
]
