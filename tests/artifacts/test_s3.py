"""The S3 artifact store against a real S3 API on loopback: moto in server mode.

Never the internet: ``moto_server`` is started by the fixture on 127.0.0.1 and the
store talks to it through s3fs/botocore exactly as it would to AWS or MinIO.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from modelport.artifacts.cache import BlobCache
from modelport.artifacts.s3 import S3ArtifactStore, parse_s3_url
from modelport.artifacts.store import digest_bytes
from modelport.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ConfigurationError,
    StorageUnavailableError,
)

CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
         "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_binary() -> str:
    found = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not os.path.exists(found):
        if os.environ.get("CI") == "true":
            pytest.fail("moto_server is missing: the dev extra installs moto[server]")
        pytest.skip("moto[server] is not installed")
    return found


@pytest.fixture(scope="module")
def moto() -> Iterator[SimpleNamespace]:
    port = _free_port()
    proc = subprocess.Popen([_moto_binary(), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    try:
        yield SimpleNamespace(url=url, proc=proc, port=port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3(moto: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client on moto and a fresh bucket per test."""
    import boto3

    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=moto.url, **{
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
        "region_name": "us-east-1"})
    bucket = f"b{time.monotonic_ns()}"
    client.create_bucket(Bucket=bucket)
    return SimpleNamespace(client=client, bucket=bucket, url=moto.url)


def _store(s3: Any, tmp_path: Path, cache_bytes: int | None = 1 << 20) -> S3ArtifactStore:
    cache = None if cache_bytes is None else BlobCache(tmp_path / "cache", cache_bytes)
    return S3ArtifactStore(f"s3://{s3.bucket}/team/models", endpoint_url=s3.url, cache=cache)


def _keys(s3: Any) -> list[str]:
    listed = s3.client.list_objects_v2(Bucket=s3.bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_round_trip_layout_and_dedup(s3: Any, tmp_path: Path) -> None:
    store = _store(s3, tmp_path, cache_bytes=None)
    data = b"model bytes" * 100
    digest = store.put(data)
    assert digest == digest_bytes(data)
    assert store.put(data) == digest  # stored once
    hexd = digest[7:]
    assert _keys(s3) == [f"team/models/sha256/{hexd[:2]}/{hexd}"]  # no temp object left
    assert store.exists(digest) and store.get(digest) == data
    store.delete(digest)
    assert not store.exists(digest) and _keys(s3) == []
    with pytest.raises(ArtifactNotFoundError, match="not found"):
        store.get(digest)
    store.delete(digest)  # absent: no error


def test_corrupt_object_is_refused_and_corrupt_cache_refetched(s3: Any, tmp_path: Path) -> None:
    store = _store(s3, tmp_path)
    data = b"the real model"
    digest = store.put(data)
    key = _keys(s3)[0]
    # Flip the cached copy: the cache drops it and the bucket's intact copy is served.
    cached = tmp_path / "cache" / digest[7:9] / digest[7:]
    cached.write_bytes(b"tampered")
    assert store.get(digest) == data and cached.read_bytes() == data
    # Tamper with the bucket's copy and drop the cache: refused, never returned.
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"evil bytes")
    store.cache.delete(digest)
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        store.get(digest)


def test_a_failed_commit_leaves_no_partial_object(s3: Any, tmp_path: Path) -> None:
    store = _store(s3, tmp_path, cache_bytes=None)

    def broken_copy(*_: Any, **__: Any) -> None:
        raise OSError("connection reset while committing")

    store.fs.copy = broken_copy  # the upload succeeded; the commit fails
    with pytest.raises(StorageUnavailableError, match="connection reset"):
        store.put(b"half written?")
    assert _keys(s3) == []  # neither the object nor its temp upload
    assert not store.exists(digest_bytes(b"half written?"))


def test_concurrent_writers_of_the_same_content(s3: Any, tmp_path: Path) -> None:
    data = os.urandom(256 * 1024)
    stores = [_store(s3, tmp_path / str(i), cache_bytes=None) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(lambda st: st.put(data), stores))
    assert len(set(digests)) == 1
    assert len(_keys(s3)) == 1
    assert stores[0].get(digests[0]) == data


def test_missing_bucket_and_unreachable_endpoint(s3: Any, tmp_path: Path) -> None:
    gone = S3ArtifactStore("s3://no-such-bucket-here/x", endpoint_url=s3.url)
    with pytest.raises(ConfigurationError, match="no-such-bucket-here"):
        gone.put(b"x")
    dead = S3ArtifactStore(f"s3://{s3.bucket}", endpoint_url=f"http://127.0.0.1:{_free_port()}")
    dead.fs.retries = 1
    with pytest.raises(StorageUnavailableError):
        dead.exists(digest_bytes(b"x"))
    for bad in ("s3://", "s3:///x", "s3://b/../x", "http://b/x"):
        with pytest.raises(ConfigurationError):
            parse_s3_url(bad)


def test_cache_is_bounded_and_survives_a_restart_without_the_bucket(
        s3: Any, tmp_path: Path, moto: SimpleNamespace) -> None:
    store = _store(s3, tmp_path, cache_bytes=300_000)
    blobs = [os.urandom(100_000) for _ in range(6)]
    digests = [store.put(b) for b in blobs]
    assert store.cache is not None and store.cache.size() <= 300_000
    # A "restarted server": a new store on the same cache folder whose bucket reads
    # fail. The newest blobs come from the cache, verified.
    restarted = _store(s3, tmp_path, cache_bytes=300_000)

    def no_network(*_: Any, **__: Any) -> bytes:
        raise AssertionError("downloaded again")

    restarted.fs.cat_file = no_network
    assert restarted.get(digests[-1]) == blobs[-1]
    assert restarted.get(digests[-2]) == blobs[-2]


def test_registry_and_server_on_s3(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    """log_model → S3, load_model verifies, and a real `modelport serve` serves from it."""
    from sklearn.linear_model import LogisticRegression

    from modelport.client import Registry
    from modelport.config import Settings
    from tests.e2e.server import ServerProcess

    home = tmp_path / "home"
    env = {**CREDS, "MODELPORT_ARTIFACTS": f"s3://{s3.bucket}/reg",
           "MODELPORT_S3_ENDPOINT_URL": s3.url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    X = np.random.default_rng(1).normal(size=(50, 3))
    model = LogisticRegression().fit(X, X[:, 0] > 0)
    with Registry(settings=Settings.load(home)) as reg:
        assert reg.artifacts.describe().startswith(f"s3://{s3.bucket}/reg")
        v = reg.log_model(model, "m", input_example=X[:2])
        reg.set_alias("m", "champion", v.version)
        assert (reg.load_model("m@champion").predict(X[:5]) == model.predict(X[:5])).all()
        assert reg.verify("m/1").digest == v.artifact_digest  # raises if any file is off
    assert not (home / "artifacts").exists()  # nothing fell back to the local folder
    assert any(k.startswith("reg/sha256/") for k in _keys(s3))
    with ServerProcess(home, ["m@champion", "--no-controller", "--no-dashboard"],
                       env=env) as server:
        resp = httpx.post(f"{server.url}/predict", json={"features": X[:3].tolist()}, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["predictions"] == model.predict(X[:3]).tolist()
