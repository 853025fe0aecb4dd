"""Encryption at rest: AES-GCM blobs under plaintext digests, every tampering detected.

The stores are real (files on disk, atomic renames; an S3 API served by moto on
loopback); tampering is done to the stored objects themselves. Small chunks (a
monkeypatched ``CHUNK_BYTES``) exercise the multi-chunk format without writing
gigabytes.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import skops.io as sio
from sklearn.linear_model import LinearRegression

from modelport.artifacts import encryption
from modelport.artifacts.encryption import (
    EncryptedArtifactStore,
    EncryptionKey,
    encrypted_size,
)
from modelport.artifacts.store import LocalArtifactStore, MemoryArtifactStore, digest_bytes
from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import ArtifactIntegrityError, ArtifactNotFoundError, ConfigurationError
from tests.artifacts.test_s3 import _keys as _s3_keys
from tests.artifacts.test_s3 import moto, s3  # noqa: F401  (fixtures: moto on loopback)

SECRET = b"TOP-SECRET-WEIGHTS:" + bytes(range(256)) * 40


def _key() -> EncryptionKey:
    return EncryptionKey(os.urandom(32))


@pytest.fixture
def local(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "a")


def _rewrite(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


@pytest.mark.parametrize("inner", ["local", "memory"])
def test_round_trip_digest_over_plaintext(inner: str, tmp_path: Path) -> None:
    raw = LocalArtifactStore(tmp_path / "a") if inner == "local" else MemoryArtifactStore()
    store = EncryptedArtifactStore(raw, _key())
    for data in (SECRET, b"", b"x"):
        digest = store.put(data)
        assert digest == digest_bytes(data) == MemoryArtifactStore().put(data)
        assert store.get(digest) == data
        assert store.exists(digest)
        stored = raw.read_object(digest)
        assert len(stored) == encrypted_size(len(data)) and stored.startswith(b"MPENC\x01")
    assert store.put(SECRET) == digest_bytes(SECRET)  # dedup
    store.delete(digest_bytes(SECRET))
    with pytest.raises(ArtifactNotFoundError):
        store.get(digest_bytes(SECRET))


def test_ciphertext_on_disk_reveals_no_plaintext(local: LocalArtifactStore) -> None:
    store = EncryptedArtifactStore(local, _key())
    digest = store.put(SECRET)
    on_disk = local.path_for(digest).read_bytes()
    assert SECRET[:19] not in on_disk and bytes(range(64)) not in on_disk
    assert oct(local.path_for(digest).stat().st_mode & 0o777) == oct(0o444)
    assert list((local.root / "tmp").iterdir()) == []  # written by temp file + rename
    # a fresh nonce per write: the same content never gives the same ciphertext
    other = LocalArtifactStore(local.root.parent / "b")
    EncryptedArtifactStore(other, store.key).put(SECRET)
    assert other.path_for(digest).read_bytes() != on_disk


def test_wrong_key_and_no_key_are_clear_errors(local: LocalArtifactStore) -> None:
    right, wrong = _key(), _key()
    digest = EncryptedArtifactStore(local, right).put(SECRET)
    with pytest.raises(ConfigurationError,
                       match=f"artifact {digest} was encrypted with key {right.key_id}, "
                             f"not the configured key {wrong.key_id}") as info:
        EncryptedArtifactStore(local, wrong).get(digest)
    assert info.value.exit_code == 7
    with pytest.raises(ConfigurationError, match=f"{digest} is encrypted \\(key "
                                                 f"{right.key_id}\\) but no encryption key"):
        local.get(digest)
    with pytest.raises(ConfigurationError, match="not overwriting"):
        EncryptedArtifactStore(local, wrong).put(SECRET)  # another key's blob stays
    assert EncryptedArtifactStore(local, right).get(digest) == SECRET


@pytest.mark.parametrize("where", ["nonce", "body", "tag", "format"])
def test_a_flipped_byte_is_detected(local: LocalArtifactStore, where: str) -> None:
    store = EncryptedArtifactStore(local, _key())
    digest = store.put(SECRET)
    path = local.path_for(digest)
    blob = bytearray(path.read_bytes())
    index = {"nonce": encryption.HEADER_BYTES - 1, "body": encryption.HEADER_BYTES + 100,
             "tag": len(blob) - 1, "format": len(encryption.MAGIC)}[where]
    blob[index] ^= 0x01
    _rewrite(path, bytes(blob))
    error = ConfigurationError if where == "format" else ArtifactIntegrityError
    with pytest.raises(error, match=f"artifact {digest}"):
        store.get(digest)


def test_a_blob_moved_to_another_digest_is_detected(local: LocalArtifactStore) -> None:
    store = EncryptedArtifactStore(local, _key())
    a, b = store.put(SECRET), store.put(b"harmless")
    _rewrite(local.path_for(b), local.path_for(a).read_bytes())
    with pytest.raises(ArtifactIntegrityError, match=f"{b} fails decryption.*moved"):
        store.get(b)


def test_chunks_cannot_be_dropped_reordered_or_cut(local: LocalArtifactStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encryption, "CHUNK_BYTES", 1000)
    store = EncryptedArtifactStore(local, _key())
    digest = store.put(SECRET)  # 10,259 bytes: 11 chunks
    assert store.get(digest) == SECRET
    path = local.path_for(digest)
    blob = path.read_bytes()
    head, step = encryption.HEADER_BYTES, 1000 + encryption.TAG_BYTES
    chunks = [blob[i:i + step] for i in range(head, len(blob), step)]
    assert len(chunks) == 11
    variants = {
        "last chunk dropped": blob[:head] + b"".join(chunks[:-1]),  # cut at a boundary
        "two chunks swapped": blob[:head] + chunks[1] + chunks[0] + b"".join(chunks[2:]),
        "a chunk repeated": blob[:head] + chunks[0] + b"".join(chunks[:-1]),
        "truncated mid-chunk": blob[:-7],
        "header only": blob[:head],
    }
    for _what, variant in variants.items():  # _what names the case in a failure's locals
        _rewrite(path, variant)
        with pytest.raises(ArtifactIntegrityError, match="fails decryption"):
            store.get(digest)
    # a damaged copy is replaced when the content is written again
    store.put(SECRET)
    assert store.get(digest) == SECRET


def test_plaintext_blobs_from_before_encryption(local: LocalArtifactStore) -> None:
    digest = local.put(SECRET)
    lookalike = b"MPENC\x01" + os.urandom(64)  # plaintext that begins like a header
    odd = local.put(lookalike)
    store = EncryptedArtifactStore(local, _key())
    assert store.get(digest) == SECRET and store.get(odd) == lookalike  # read, checked
    _rewrite(local.path_for(odd), lookalike[:-1] + b"!")
    with pytest.raises((ArtifactIntegrityError, ConfigurationError)):
        store.get(odd)
    _rewrite(local.path_for(digest), SECRET[:-1] + b"!")
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        store.get(digest)
    assert store.put(SECRET) == digest  # writing it again stores it encrypted
    assert SECRET[:19] not in local.path_for(digest).read_bytes()
    assert store.get(digest) == SECRET


def test_keys_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = os.urandom(32)
    text = base64.b64encode(raw).decode()
    monkeypatch.setenv("MODELPORT_ENCRYPTION_KEY", text)
    key = EncryptionKey.from_env()
    assert key is not None and key.key_id == EncryptionKey(raw).key_id
    assert text not in repr(key)
    (tmp_path / "b64").write_text(text + "\n")
    (tmp_path / "raw").write_bytes(raw)
    for name in ("b64", "raw"):
        assert EncryptionKey.from_setting(str(tmp_path / name)).key_id == key.key_id
    short = base64.b64encode(os.urandom(16)).decode()
    for bad in (short, "not a key", str(tmp_path / "missing")):
        with pytest.raises(ConfigurationError, match="base64 of 32 bytes") as info:
            EncryptionKey.from_setting(bad)
        assert short not in str(info.value)  # a secret is never echoed
    (tmp_path / "bad").write_text("nope")
    with pytest.raises(ConfigurationError, match="holds no encryption key"):
        EncryptionKey.from_setting(str(tmp_path / "bad"))
    monkeypatch.setenv("MODELPORT_ENCRYPTION_KEY", "")
    assert EncryptionKey.from_env() is None


def test_registry_encrypts_with_the_env_key(home: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    X = np.arange(12, dtype=float).reshape(4, 3)
    path = tmp_path / "m.skops"
    sio.dump(LinearRegression().fit(X, X.sum(1)), path)
    plain = Registry(settings=Settings.load(tmp_path / "plain"))
    expected = plain.register_file("m", path).artifact_digest
    plain.close()
    monkeypatch.setenv("MODELPORT_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode())
    reg = Registry(settings=Settings.load(home))
    assert isinstance(reg.artifacts, EncryptedArtifactStore)
    v = reg.register_file("m", path)
    assert v.artifact_digest == expected  # content addressing unchanged
    np.testing.assert_allclose(reg.load_model("m/1").predict(X), X.sum(1))
    assert reg.verify("m/1").files == 1
    model_bytes = path.read_bytes()
    for blob in (home / "artifacts" / "sha256").rglob("*"):
        if blob.is_file():
            assert blob.read_bytes().startswith(b"MPENC") and model_bytes[:200] not in \
                blob.read_bytes()
    reg.close()
    monkeypatch.delenv("MODELPORT_ENCRYPTION_KEY")
    with pytest.raises(ConfigurationError, match="no encryption key is configured"):
        Registry(settings=Settings.load(home)).load_model("m/1")


def test_encrypted_blobs_in_an_s3_bucket(s3: Any, tmp_path: Path) -> None:  # noqa: F811
    """Over the S3 store (moto on loopback): ciphertext in the bucket, nothing in the
    clear in the local cache, tampering in the bucket detected."""
    from modelport.artifacts.cache import BlobCache
    from modelport.artifacts.s3 import S3ArtifactStore

    raw = S3ArtifactStore(f"s3://{s3.bucket}/enc", endpoint_url=s3.url,
                          cache=BlobCache(tmp_path / "cache", 1 << 20))
    store = EncryptedArtifactStore(raw, _key())
    digest = store.put(SECRET)
    assert digest == digest_bytes(SECRET) and store.put(SECRET) == digest
    [key] = _s3_keys(s3)
    body = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    assert body.startswith(b"MPENC") and SECRET[:19] not in body
    assert store.get(digest) == SECRET
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert all(SECRET[:19] not in p.read_bytes() for p in cached)
    with pytest.raises(ConfigurationError, match="not the configured key"):
        EncryptedArtifactStore(raw, _key()).get(digest)
    flipped = bytearray(body)
    flipped[-3] ^= 0x01
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=bytes(flipped))
    with pytest.raises(ArtifactIntegrityError, match="fails decryption"):
        store.get(digest)
