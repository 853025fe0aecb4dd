"""Who can reach the server: whether auth is on, and the TLS files, settled before start.

Auth is on whenever the server binds to anything but loopback (127.0.0.0/8, ::1,
``localhost``), and on loopback too with ``--auth`` or ``serve.yaml`` ``auth.enabled:
true``. Turning it off for a non-loopback address takes ``--insecure-no-auth``; a
``serve.yaml`` saying ``enabled: false`` is not enough, so a config copied from a laptop
cannot open a server to the network. Auth that no token could pass refuses to start.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from modelport.errors import ConfigurationError

CREATE_HINT = "create one with: modelport tokens create NAME --role predictor"


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server on this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # another host name: it may resolve anywhere
        return False


@dataclass(frozen=True)
class AuthDecision:
    """Whether auth is on, and why (for the messages)."""

    enabled: bool
    reason: str


def settle_auth(configured: bool | None, host: str, *, auth: bool, insecure: bool
                ) -> AuthDecision:
    """Auth on or off from serve.yaml's ``auth.enabled``, ``--host``, ``--auth`` and
    ``--insecure-no-auth``; ConfigurationError when they contradict or when auth would
    be off on a non-loopback address without ``--insecure-no-auth``."""
    if auth and insecure:
        raise ConfigurationError("--auth and --insecure-no-auth contradict each other: "
                                 "give one of them")
    if auth:
        return AuthDecision(True, "--auth")
    if insecure:
        return AuthDecision(False, "--insecure-no-auth")
    if configured:
        return AuthDecision(True, "serve.yaml auth.enabled: true")
    if is_loopback(host):
        return AuthDecision(False, f"--host {host} is loopback")
    if configured is False:
        raise ConfigurationError(
            f"serve.yaml sets auth.enabled: false, but --host {host} is not loopback: "
            "anyone who can reach it could call every model. Pass --insecure-no-auth to "
            "serve without authentication anyway, or drop auth.enabled: false")
    return AuthDecision(True, f"--host {host} is not loopback")


def require_tokens(decision: AuthDecision, has_active: bool) -> None:
    """Refuse to start an authenticated server that no token could call."""
    if not decision.enabled or has_active:
        return
    escape = "" if decision.reason == "--auth" else (
        ", or pass --insecure-no-auth to serve without authentication (on a network "
        "you trust)")
    raise ConfigurationError(
        f"authentication is on ({decision.reason}) but the registry holds no active "
        f"token, so nobody could call this server: {CREATE_HINT}{escape}")


def check_tls(cert: Path | None, key: Path | None) -> tuple[str, str] | None:
    """``(cert, key)`` paths once both are readable and make a usable pair, else None
    when neither is given; ConfigurationError saying what is wrong otherwise."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigurationError("--tls-cert and --tls-key go together: give both or neither")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {flag} {path}: "
                                     f"{exc.strerror or exc}") from None

    def no_password() -> bytes:
        raise ConfigurationError(f"--tls-key {key} is encrypted: give an unencrypted key "
                                 "(readable only by the server's user)")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key), password=no_password)
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate and its "
            f"private key ({exc.reason or exc})") from None
    return str(cert), str(key)


__all__ = ["AuthDecision", "check_tls", "is_loopback", "require_tokens", "settle_auth"]
