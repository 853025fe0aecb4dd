"""Signed versions: Ed25519 over (name, version, artifact digest), on SQLite and PostgreSQL.

Each refusal is driven by a real change to the stored record (the database row edited
with SQL), never by a mock; the canonical bytes are checked against ``cryptography``
directly, so the format cannot drift silently.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sklearn.linear_model import LinearRegression

import modelport
from modelport.artifacts.signing import (
    generate_key_pair,
    load_signing_key,
    load_verify_keys,
    signed_bytes,
)
from modelport.client import Registry
from modelport.errors import (
    ArtifactIntegrityError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    InvalidNameError,
    UntrustedModelError,
)
from modelport.registry.schema import model_versions
from modelport.registry.schema import registered_models as models_t

X = np.arange(24, dtype=float).reshape(8, 3)
Y = X @ np.array([1.0, 2.0, 3.0])


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Two key pairs: 'release' (trusted) and 'other'."""
    out = tmp_path / "keys"
    rel_priv, rel_pub, _ = generate_key_pair(out, "release")
    oth_priv, oth_pub, _ = generate_key_pair(out, "other")
    return {"priv": rel_priv, "pub": rel_pub, "other_priv": oth_priv, "other_pub": oth_pub}


def _model(scale: float = 1.0) -> LinearRegression:
    return LinearRegression().fit(X, Y * scale)


def _edit_signing(reg: Registry, name: str, version: int, record: dict | None) -> None:
    """Overwrite a version's stored signature record with SQL, as an attacker with
    database access would."""
    engine = reg.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(model_versions.c.id, model_versions.c.environment)
            .join(models_t, models_t.c.id == model_versions.c.model_id)
            .where(models_t.c.name == name, model_versions.c.version == version)).one()
        env = dict(row.environment)
        if record is None:
            env.pop("signing", None)
        else:
            env["signing"] = record
        conn.execute(sa.update(model_versions).where(model_versions.c.id == row.id)
                     .values(environment=env))


# -- the signed bytes -------------------------------------------------------------------


def test_signed_bytes_are_canonical_and_verify_with_plain_cryptography(keys) -> None:
    digest = "sha256:" + "ab" * 32
    assert signed_bytes("iris", 3, digest) == (
        b"modelport-signature-v1\nname:iris\nversion:3\ndigest:" + digest.encode() + b"\n")
    record = load_signing_key(keys["priv"]).sign("iris", 3, digest, "ci")
    public = serialization.load_pem_public_key(keys["pub"].read_bytes())
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(base64.b64decode(record["signature"]), signed_bytes("iris", 3, digest))
    with pytest.raises(InvalidNameError):
        signed_bytes("iris\nversion:4", 3, digest)
    with pytest.raises(InvalidInputError, match="malformed digest"):
        signed_bytes("iris", 3, "sha256:xyz")
    with pytest.raises(InvalidInputError, match="positive integer"):
        signed_bytes("iris", 0, digest)


# -- sign at registration, verify at load ------------------------------------------------


def test_sign_and_verify_round_trip(registry: Registry, keys) -> None:
    v = registry.log_model(_model(), "iris", sign_key=keys["priv"])
    signer = load_signing_key(keys["priv"])
    assert v.signing is not None and v.signing["key_id"] == signer.key_id
    assert v.signing["signed_by"] == "tester"
    assert registry.get("iris/1").signing == v.signing  # as stored
    loaded = registry.load_model("iris/1", require_signature_keys=[keys["pub"]])
    np.testing.assert_allclose(loaded.predict(X), Y)
    # several trusted keys: one match is enough
    loaded = registry.load_model("iris/1",
                                 require_signature_keys=[keys["other_pub"], keys["pub"]])
    report = registry.verify("iris/1", keys=[keys["pub"]])
    assert (report.signature, report.signed_by) == ("verified", signer.key_id)
    assert registry.verify("iris/1").signature == "unchecked"
    # the registration's audit record names the key
    record = registry.audit.list(action="version.register")[-1]
    assert record.after["signed_by_key"] == signer.key_id


def test_register_file_and_env_key_sign(sqlite_registry: Registry, keys, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io as sio

    path = tmp_path / "m.skops"
    sio.dump(_model(), path)
    v1 = sqlite_registry.register_file("m", path, sign_key=str(keys["priv"]))
    assert v1.signing is not None
    monkeypatch.setenv("MODELPORT_SIGNING_KEY", keys["priv"].read_text())  # PEM text
    v2 = sqlite_registry.register_file("m", path)
    monkeypatch.setenv("MODELPORT_SIGNING_KEY", str(keys["other_priv"]))  # a path
    v3 = modelport.log_model(_model(), "m", registry=sqlite_registry)
    assert v2.signing["key_id"] == v1.signing["key_id"]
    assert v3.signing["key_id"] == load_signing_key(keys["other_priv"]).key_id
    monkeypatch.setenv("MODELPORT_VERIFY_KEYS", f"{keys['pub']}, {keys['other_pub']}")
    for n in (1, 2, 3):
        assert sqlite_registry.verify(f"m/{n}").signature == "verified"
        sqlite_registry.load_model(f"m/{n}", require_signature_keys=load_verify_keys())
    monkeypatch.delenv("MODELPORT_SIGNING_KEY")
    assert sqlite_registry.register_file("m", path).signing is None


def test_unsigned_is_refused_only_under_the_policy(registry: Registry, keys) -> None:
    registry.log_model(_model(), "iris")
    registry.load_model("iris/1")  # no policy: loads
    assert registry.verify("iris/1").signature == "unsigned"
    with pytest.raises(UntrustedModelError,
                       match=r"models:/iris/1 is not signed by a trusted key: it has no "
                             "signature") as info:
        registry.load_model("iris/1", require_signature_keys=[keys["pub"]])
    assert info.value.exit_code == 6 and info.value.http_status == 403
    with pytest.raises(UntrustedModelError, match="no signature"):
        registry.verify("iris/1", keys=[keys["pub"]])


def test_wrong_key_is_refused_naming_both_keys(registry: Registry, keys) -> None:
    registry.log_model(_model(), "iris", sign_key=keys["other_priv"])
    other = load_signing_key(keys["other_priv"]).key_id
    trusted = load_signing_key(keys["priv"]).key_id
    with pytest.raises(UntrustedModelError,
                       match=f"signed by key {other}, and the trusted keys are {trusted}"):
        registry.load_model("iris/1", require_signature_keys=[keys["pub"]])


def test_tampered_signature_is_refused(registry: Registry, keys) -> None:
    v = registry.log_model(_model(), "iris", sign_key=keys["priv"])
    raw = bytearray(base64.b64decode(v.signing["signature"]))
    raw[5] ^= 0x01
    _edit_signing(registry, "iris", 1, {**v.signing,
                                        "signature": base64.b64encode(bytes(raw)).decode()})
    with pytest.raises(UntrustedModelError, match="does not match this version"):
        registry.load_model("iris/1", require_signature_keys=[keys["pub"]])
    _edit_signing(registry, "iris", 1, {**v.signing, "signature": "not base64!"})
    with pytest.raises(UntrustedModelError, match="does not match this version"):
        registry.load_model("iris/1", require_signature_keys=[keys["pub"]])
    _edit_signing(registry, "iris", 1, {**v.signing, "format": "modelport-signature-v0"})
    with pytest.raises(UntrustedModelError, match="unsupported signature format"):
        registry.load_model("iris/1", require_signature_keys=[keys["pub"]])


def test_signature_moved_to_another_version_is_refused(registry: Registry, keys,
                                                       tmp_path: Path) -> None:
    import skops.io as sio

    path = tmp_path / "m.skops"
    sio.dump(_model(), path)
    v1 = registry.register_file("iris", path, sign_key=keys["priv"])
    v2 = registry.register_file("iris", path)  # the same bytes: the same digest
    v3 = registry.register_file("fraud", path)
    assert v1.artifact_digest == v2.artifact_digest == v3.artifact_digest
    _edit_signing(registry, "iris", 2, v1.signing)
    _edit_signing(registry, "fraud", 1, v1.signing)
    for uri in ("iris/2", "fraud/1"):
        with pytest.raises(UntrustedModelError, match="copied from another version"):
            registry.load_model(uri, require_signature_keys=[keys["pub"]])
    registry.load_model("iris/1", require_signature_keys=[keys["pub"]])


def test_keys_are_never_stored_in_the_database(sqlite_registry: Registry, keys,
                                               home: Path) -> None:
    sqlite_registry.log_model(_model(), "iris", sign_key=keys["priv"])
    sqlite_registry.log_model(_model(2.0), "iris")
    sqlite_registry.sign("iris/2", keys["priv"])
    sqlite_registry.close()
    private = load_signing_key(keys["priv"]).private
    secrets = [
        b"".join(keys["priv"].read_bytes().splitlines()[1:-1]),  # the PEM body
        private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                              serialization.NoEncryption()),
        b"".join(keys["pub"].read_bytes().splitlines()[1:-1]),
    ]
    secrets.append(base64.b64encode(secrets[1]))
    data = b"".join(p.read_bytes() for p in home.glob("registry.db*"))
    assert b"modelport-signature-v1" in data  # the records are there ...
    for secret in secrets:
        assert secret not in data  # ... the keys are not


# -- signing an existing version ---------------------------------------------------------


def test_sign_later_is_audited_and_guarded(registry: Registry, keys) -> None:
    registry.log_model(_model(), "iris")
    v = registry.sign("iris/1", keys["priv"])
    assert v.signing["key_id"] == load_signing_key(keys["priv"]).key_id
    registry.load_model("iris/1", require_signature_keys=[keys["pub"]])
    signs = registry.audit.list(action="version.sign")
    assert [(r.target, r.before, r.after["key_id"]) for r in signs] == [
        ("iris/1", None, v.signing["key_id"])]
    registry.sign("iris/1", keys["priv"])  # the same signature again: nothing changes
    assert len(registry.audit.list(action="version.sign")) == 1
    with pytest.raises(ConflictError, match=r"already signed by key .*--replace"):
        registry.sign("iris/1", keys["other_priv"])
    assert registry.get("iris/1").signing == v.signing
    registry.sign("iris/1", keys["other_priv"], replace=True)
    last = registry.audit.list(action="version.sign")[-1]
    assert last.before == {"key_id": v.signing["key_id"]}
    registry.load_model("iris/1", require_signature_keys=[keys["other_pub"]])
    with pytest.raises(UntrustedModelError):
        registry.load_model("iris/1", require_signature_keys=[keys["pub"]])
    assert registry.audit.verify().ok


def test_sign_refuses_a_corrupt_artifact(sqlite_registry: Registry, keys) -> None:
    v = sqlite_registry.log_model(_model(), "iris")
    manifest = sqlite_registry.artifacts.get(v.artifact_digest)  # type: ignore[attr-defined]
    files = __import__("orjson").loads(manifest)["files"]
    blob = sqlite_registry.artifacts.path_for(  # type: ignore[attr-defined]
        next(iter(files.values()))["digest"])
    blob.chmod(0o644)
    blob.write_bytes(b"evil")
    with pytest.raises(ArtifactIntegrityError):
        sqlite_registry.sign("iris/1", keys["priv"])
    assert sqlite_registry.get("iris/1").signing is None
    assert sqlite_registry.audit.list(action="version.sign") == []


# -- bad keys: precise errors, nothing written -------------------------------------------


def test_bad_signing_keys_fail_before_anything_is_written(sqlite_registry: Registry, keys,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    locked = tmp_path / "locked.pem"
    locked.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw")))
    cases = [(tmp_path / "missing.pem", "cannot read signing key"),
             (keys["pub"], "is not a PEM private key"),
             (ec_key, "not an Ed25519 private key"),
             (locked, "encrypted with a passphrase")]
    for source, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            sqlite_registry.log_model(_model(), "iris", sign_key=source)
    monkeypatch.setenv("MODELPORT_SIGNING_KEY", "-----BEGIN PRIVATE KEY-----\nxx\n")
    with pytest.raises(ConfigurationError, match=r"\$MODELPORT_SIGNING_KEY is not a PEM"):
        sqlite_registry.log_model(_model(), "iris")
    monkeypatch.delenv("MODELPORT_SIGNING_KEY")
    assert sqlite_registry.list() == []
    root = Path(sqlite_registry.artifacts.describe()) / "sha256"
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))
    with pytest.raises(ConfigurationError, match="no signing key"):
        sqlite_registry.sign("iris/1")


def test_bad_verify_keys(keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInputError, match="holds a private key"):
        load_verify_keys([keys["priv"]])
    with pytest.raises(InvalidInputError, match="cannot read public key"):
        load_verify_keys([tmp_path / "nope.pub"])
    with pytest.raises(ConfigurationError, match="no key to verify signatures"):
        load_verify_keys([])
    monkeypatch.setenv("MODELPORT_VERIFY_KEYS", " , ")
    with pytest.raises(ConfigurationError, match="MODELPORT_VERIFY_KEYS"):
        load_verify_keys()
    monkeypatch.setenv("MODELPORT_VERIFY_KEYS", str(tmp_path / "gone.pub"))
    with pytest.raises(ConfigurationError, match="cannot read public key"):
        load_verify_keys()


def test_generated_keys_are_private_and_never_overwritten(tmp_path: Path) -> None:
    priv, pub, key_id = generate_key_pair(tmp_path / "k", "ci")
    assert priv.stat().st_mode & 0o777 == 0o600
    assert load_signing_key(priv).key_id == key_id == load_verify_keys([pub]).ids[0]
    before = priv.read_bytes()
    with pytest.raises(InvalidInputError, match="exists; pass --force"):
        generate_key_pair(tmp_path / "k", "ci")
    assert priv.read_bytes() == before
    _, _, new_id = generate_key_pair(tmp_path / "k", "ci", force=True)
    assert new_id != key_id and priv.stat().st_mode & 0o777 == 0o600
    with pytest.raises(InvalidNameError):
        generate_key_pair(tmp_path / "k", "../escape")
    assert "PRIVATE" not in repr(load_signing_key(priv))
