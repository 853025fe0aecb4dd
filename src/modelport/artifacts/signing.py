"""Ed25519 signatures over a version's identity: model name, version number, digest.

What is signed is the canonical byte string ``signed_bytes(name, version, digest)``::

    modelport-signature-v1\\n
    name:iris\\n
    version:3\\n
    digest:sha256:<64 hex>\\n

The artifact digest is the bundle manifest's sha256, which covers every file's digest,
the flavor and its metadata, so one signature pins all that decides how the model
behaves. Name and number are in it so a signature cannot be copied onto another
version (same content registered twice, or under another name). The prefix separates
this use of the key from any other. Names cannot hold a newline (``uri.validate_name``),
so the string is unambiguous.

Keys: the private key is a PEM file (``--sign-key FILE``) or ``MODELPORT_SIGNING_KEY``
(PEM text or a path); public keys for verification are files or
``MODELPORT_VERIFY_KEYS`` (paths, comma separated). Neither is ever stored in the
registry: a version carries only the signature, the key id (the first 16 hex digits of
the sha256 of the raw public key) and who signed when.

Why ``cryptography`` and not OpenSSF's ``model-signing``: model-signing 1.1.1 installs
here, but its import needs pyOpenSSL, which it does not declare; its local-key signer
takes NIST P-256/384/521 keys only (an Ed25519 key fails with an AttributeError); it
signs a folder on disk, where a bundle is content-addressed blobs whose manifest digest
already covers every file, and it cannot bind the model name and version; and it brings
sigstore, tuf and protobuf (~38 packages) for a 64-byte signature. Offline with a local
P-256 key it does work; with Ed25519, which the issue asks for, it does not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from modelport.artifacts.store import check_digest
from modelport.config import SIGNING_KEY_ENV, VERIFY_KEYS_ENV
from modelport.errors import (
    ConfigurationError,
    InvalidInputError,
    ModelportError,
    UntrustedModelError,
)
from modelport.uri import validate_name

SIGNATURE_FORMAT = "modelport-signature-v1"
DOMAIN = SIGNATURE_FORMAT.encode() + b"\n"
ALGORITHM = "ed25519"

KeySource = str | os.PathLike[str] | bytes | Ed25519PrivateKey
PublicKeySource = str | os.PathLike[str] | bytes | Ed25519PublicKey


def signed_bytes(name: str, version: int, digest: str) -> bytes:
    """The canonical bytes a version's signature covers."""
    validate_name(name)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInputError(f"a version number is a positive integer, got {version!r}")
    body = f"name:{name}\nversion:{version}\ndigest:{check_digest(digest)}\n"
    return DOMAIN + body.encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's fingerprint: 16 hex digits of the sha256 of its raw 32 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    """A private key ready to sign; its repr shows the key id only."""

    private: Ed25519PrivateKey = field(repr=False)
    key_id: str
    source: str

    def sign(self, name: str, version: int, digest: str, signed_by: str) -> dict[str, Any]:
        """The signature record stored beside the version."""
        signature = self.private.sign(signed_bytes(name, version, digest))
        return {"format": SIGNATURE_FORMAT, "algorithm": ALGORITHM, "key_id": self.key_id,
                "signature": base64.b64encode(signature).decode(), "signed_by": signed_by,
                "signed_at": datetime.now(UTC).isoformat(timespec="seconds")}


@dataclass(frozen=True)
class VerifyKey:
    """A trusted public key and where it came from."""

    public: Ed25519PublicKey = field(repr=False)
    key_id: str
    source: str


@dataclass(frozen=True)
class VerifyKeys:
    """The public keys a version's signature must verify against (one of them)."""

    keys: tuple[VerifyKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigurationError(
                f"no key to verify signatures with: give public key files or set "
                f"{VERIFY_KEYS_ENV}")

    @property
    def ids(self) -> list[str]:
        """The trusted key ids."""
        return [k.key_id for k in self.keys]

    def verify(self, uri: str, name: str, version: int, digest: str,
               record: dict[str, Any] | None) -> str:
        """The id of the trusted key that signed this version; UntrustedModelError
        saying why not otherwise."""
        why = f"{uri} is not signed by a trusted key"
        if not record:
            raise UntrustedModelError(f"{why}: it has no signature (sign it with "
                                      "`modelport models sign`)", uri=uri)
        if record.get("format") != SIGNATURE_FORMAT or record.get("algorithm") != ALGORITHM:
            raise UntrustedModelError(
                f"{why}: unsupported signature format {record.get('format')!r} "
                f"({record.get('algorithm')!r})", uri=uri)
        signer = str(record.get("key_id"))
        candidates = [k for k in self.keys if k.key_id == signer]
        if not candidates:
            raise UntrustedModelError(
                f"{why}: it is signed by key {signer}, and the trusted keys are "
                f"{', '.join(self.ids)}", uri=uri)
        try:
            signature = base64.b64decode(str(record.get("signature")), validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        message = signed_bytes(name, version, digest)
        for key in candidates:
            try:
                key.public.verify(signature, message)
                return key.key_id
            except InvalidSignature:
                continue
        raise UntrustedModelError(
            f"{why}: the signature by key {signer} does not match this version (its name, "
            "number and artifact digest); it was altered or copied from another version",
            uri=uri)


def _read_source(source: str | os.PathLike[str] | bytes, what: str,
                 error: type[ModelportError]) -> tuple[bytes, str]:
    """(PEM bytes, description) from PEM text/bytes or a path."""
    if isinstance(source, bytes):
        return source, what
    text = os.fspath(source)
    if text.lstrip().startswith("-----BEGIN"):
        return text.encode(), what
    path = Path(text).expanduser()
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def load_signing_key(source: KeySource | None = None) -> SigningKey:
    """The private key from ``source`` (PEM text/bytes, a path, a key object) or, when
    None, from ``MODELPORT_SIGNING_KEY``."""
    if isinstance(source, Ed25519PrivateKey):
        return SigningKey(source, key_id(source.public_key()), "key object")
    error: type[ModelportError] = InvalidInputError
    if source is None:
        source = os.environ.get(SIGNING_KEY_ENV, "")
        if not source.strip():
            raise ConfigurationError(f"no signing key: give one or set {SIGNING_KEY_ENV}")
        error = ConfigurationError
    where = f"${SIGNING_KEY_ENV}" if error is ConfigurationError else "signing key"
    pem, described = _read_source(source, where, error)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise error(f"{described} is encrypted with a passphrase; modelport reads "
                    "unencrypted PKCS#8 PEM keys (keep the file mode 0600)") from None
    except ValueError:
        raise error(f"{described} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise error(f"{described} is a {type(key).__name__.removeprefix('_')}, "
                    "not an Ed25519 private key (`modelport keys generate` makes one)")
    return SigningKey(key, key_id(key.public_key()), described)


def load_verify_keys(sources: Iterable[PublicKeySource] | None = None) -> VerifyKeys:
    """Public keys from paths/PEM/key objects or, when None, ``MODELPORT_VERIFY_KEYS``."""
    error: type[ModelportError] = InvalidInputError
    if sources is None:
        raw = os.environ.get(VERIFY_KEYS_ENV, "")
        sources = [p.strip() for p in raw.split(",") if p.strip()]
        error = ConfigurationError
    keys = [_public_key(s, error) for s in sources]
    return VerifyKeys(tuple(keys))


def _public_key(source: PublicKeySource, error: type[ModelportError]) -> VerifyKey:
    if isinstance(source, Ed25519PublicKey):
        return VerifyKey(source, key_id(source), "key object")
    pem, described = _read_source(source, "public key", error)
    if b"PRIVATE KEY" in pem:
        raise error(f"{described} holds a private key; verification takes the public key "
                    "(the .pub file `modelport keys generate` wrote beside it)")
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise error(f"{described} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise error(f"{described} is not an Ed25519 public key")
    return VerifyKey(key, key_id(key), described)


def as_verify_keys(keys: VerifyKeys | Sequence[PublicKeySource] | None) -> VerifyKeys | None:
    """``keys`` as VerifyKeys (loading paths), None staying None."""
    if keys is None or isinstance(keys, VerifyKeys):
        return keys
    return load_verify_keys(keys)


def generate_key_pair(out_dir: Path, name: str = "modelport", *,
                      force: bool = False) -> tuple[Path, Path, str]:
    """Write ``NAME.key`` (private, mode 0600) and ``NAME.pub`` into ``out_dir``; return
    both paths and the key id. Refuses to overwrite unless ``force``."""
    validate_name(name, "key name")
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    existing = [p for p in (private_path, public_path) if p.exists()]
    if existing and not force:
        raise InvalidInputError(f"{existing[0]} exists; pass --force to replace the key pair")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private_path.unlink(missing_ok=True)
    # Created 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path, key_id(key.public_key())


__all__ = [
    "SIGNATURE_FORMAT", "SIGNING_KEY_ENV", "VERIFY_KEYS_ENV", "SigningKey", "VerifyKey",
    "VerifyKeys", "as_verify_keys", "generate_key_pair", "key_id", "load_signing_key",
    "load_verify_keys", "signed_bytes",
]
