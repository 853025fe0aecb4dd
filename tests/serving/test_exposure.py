"""When auth is on, and the TLS files checked before the server starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.errors import ConfigurationError
from modelport.serving.config import load_spec
from modelport.serving.exposure import (
    AuthDecision,
    check_tls,
    is_loopback,
    require_tokens,
    settle_auth,
)
from tests.tls import self_signed


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("LOCALHOST", True), ("0.0.0.0", False), ("::", False),
    ("10.0.0.5", False), ("", False), ("myhost", False), ("localhost.evil.com", False),
])
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auth_is_on_off_loopback_and_only_an_explicit_flag_turns_it_off() -> None:
    assert not settle_auth(None, "127.0.0.1", auth=False, insecure=False).enabled
    assert settle_auth(None, "127.0.0.1", auth=True, insecure=False).enabled
    assert settle_auth(True, "127.0.0.1", auth=False, insecure=False).enabled
    assert settle_auth(None, "0.0.0.0", auth=False, insecure=False) == AuthDecision(
        True, "--host 0.0.0.0 is not loopback")
    assert not settle_auth(None, "0.0.0.0", auth=False, insecure=True).enabled
    assert not settle_auth(True, "0.0.0.0", auth=False, insecure=True).enabled
    with pytest.raises(ConfigurationError, match="Pass --insecure-no-auth to serve without"):
        settle_auth(False, "0.0.0.0", auth=False, insecure=False)  # a yaml is not enough
    with pytest.raises(ConfigurationError, match="contradict"):
        settle_auth(None, "0.0.0.0", auth=True, insecure=True)


def test_auth_no_token_could_pass_refuses_to_start() -> None:
    on = settle_auth(None, "0.0.0.0", auth=False, insecure=False)
    with pytest.raises(ConfigurationError) as info:
        require_tokens(on, has_active=False)
    assert "no active token" in str(info.value) and "modelport tokens create" in str(info.value)
    assert "--insecure-no-auth" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        require_tokens(AuthDecision(True, "--auth"), has_active=False)
    assert "--insecure-no-auth" not in str(info.value)  # they asked for auth
    require_tokens(on, has_active=True)
    require_tokens(AuthDecision(False, "--insecure-no-auth"), has_active=False)


def test_serve_yaml_auth_keys(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("models: [{uri: iris}]\nauth: {enabled: true, protect_metrics: false, "
                    "rate: 20, burst: 40, cache_seconds: 1}\n")
    auth = load_spec(path, []).auth
    assert (auth.enabled, auth.value().protect_metrics, auth.value().rate,
            auth.value().burst, auth.value().cache_seconds) == (True, False, 20, 40, 1)
    for bad, where in [("auth: {burst: 5}", "auth.burst: a burst needs auth.rate"),
                       ("auth: {rate: 0}", "auth.rate"), ("auth: {tokens: x}", "auth.tokens"),
                       ("auth: {cache_seconds: -1}", "auth.cache_seconds")]:
        path.write_text(f"models: [{{uri: iris}}]\n{bad}\n")
        with pytest.raises(ConfigurationError, match=f"invalid serve configuration at {where}"):
            load_spec(path, [])


def test_tls_files_are_checked_before_start(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    assert check_tls(cert, key) == (str(cert), str(key))
    assert check_tls(None, None) is None
    with pytest.raises(ConfigurationError, match="go together"):
        check_tls(cert, None)
    with pytest.raises(ConfigurationError, match="go together"):
        check_tls(None, key)
    with pytest.raises(ConfigurationError, match=r"cannot read --tls-key .*missing.key"):
        check_tls(cert, tmp_path / "missing.key")
    with pytest.raises(ConfigurationError, match="cannot read --tls-cert"):
        check_tls(tmp_path, key)  # a folder
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="not a PEM certificate and its private key"):
        check_tls(junk, key)
    other_cert, other_key = self_signed(tmp_path / "other")
    with pytest.raises(ConfigurationError, match="not a PEM certificate and its private key"):
        check_tls(cert, other_key)  # a key that is not the certificate's
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(loaded.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(ConfigurationError, match="is encrypted"):
        check_tls(cert, encrypted)
    assert other_cert.exists()
