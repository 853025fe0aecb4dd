"""Content-addressed blobs: atomic writes, dedup, and integrity checks on every read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelport.artifacts import (
    Bundle,
    LocalArtifactStore,
    MemoryArtifactStore,
    digest_bytes,
    write_bundle,
)
from modelport.errors import ArtifactIntegrityError, ArtifactNotFoundError, InvalidInputError


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    return LocalArtifactStore(tmp_path / "a") if request.param == "local" else MemoryArtifactStore()


def test_put_get_round_trip_and_dedup(store) -> None:
    d1 = store.put(b"hello")
    d2 = store.put(b"hello")
    assert d1 == d2 == digest_bytes(b"hello")
    assert store.get(d1) == b"hello"
    assert store.exists(d1)
    store.delete(d1)
    assert not store.exists(d1)
    with pytest.raises(ArtifactNotFoundError):
        store.get(d1)


def test_malformed_digests_never_reach_the_filesystem(store) -> None:
    for bad in ["sha256:../../etc/passwd", "md5:abc", "sha256:" + "g" * 64, "", "sha256:AB" * 1]:
        with pytest.raises(InvalidInputError, match="malformed digest"):
            store.get(bad)


def _tamper(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


def test_tampered_and_truncated_files_are_detected(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put(b"x" * 1000)
    path = store.path_for(digest)
    assert oct(path.stat().st_mode & 0o777) == oct(0o444)
    _tamper(path, b"y" + b"x" * 999)
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        store.get(digest)
    _tamper(path, b"x" * 10)
    with pytest.raises(ArtifactIntegrityError, match="10 bytes"):
        store.get(digest)
    # writing the same content again repairs a truncated blob instead of trusting it
    store.put(b"x" * 1000)
    assert store.get(digest) == b"x" * 1000


def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    for i in range(20):
        store.put(str(i).encode())
    assert list((tmp_path / "tmp").iterdir()) == []


def test_bundle_round_trip_and_file_checks(store) -> None:
    written = write_bundle(store, {"model.bin": b"abc", "sub/x.txt": b"def"},
                           {"flavor": "test", "flavor_meta": {"k": 1}})
    bundle = Bundle(store, written.digest)
    assert bundle.flavor == "test"
    assert bundle.meta == {"k": 1}
    assert bundle.names() == ["model.bin", "sub/x.txt"]
    assert bundle.read("sub/x.txt") == b"def"
    assert bundle.verify() == 6
    # identical content: same digest, nothing new created
    again = write_bundle(store, {"model.bin": b"abc", "sub/x.txt": b"def"},
                         {"flavor": "test", "flavor_meta": {"k": 1}})
    assert again.digest == written.digest
    assert again.created == ()


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../../b", "a\x00b", "", "a//b", ".hidden"])
def test_bundle_file_names_are_validated(store, name: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid file name"):
        write_bundle(store, {name: b"x"}, {"flavor": "t"})


def test_a_blob_that_is_not_a_manifest_is_refused(store) -> None:
    digest = store.put(b"not json")
    with pytest.raises(ArtifactIntegrityError, match="not a model manifest"):
        Bundle(store, digest)
    digest = store.put(b'{"format": "other"}')
    with pytest.raises(ArtifactIntegrityError, match="not a model manifest"):
        Bundle(store, digest)
    digest = store.put(b'{"format": "modelport.bundle/1", "files": {"../../x": {}}}')
    with pytest.raises(InvalidInputError):
        Bundle(store, digest)


def test_failed_bundle_write_removes_what_it_created(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(InvalidInputError):
        write_bundle(store, {"good": b"1", "zz/../bad": b"2"}, {"flavor": "t"})
    assert not any((tmp_path / "sha256").rglob("*")) or all(
        p.is_dir() for p in (tmp_path / "sha256").rglob("*")
    )
