"""API tokens: created with a role and a model pattern, stored hashed, verified, revoked.

A token's value is ``mp_<lookup>_<secret>``: ``lookup`` is 16 random hex digits that
find its row through a unique index (so verifying reads one row, never scans), and
``secret`` comes from ``secrets.token_urlsafe(32)``. The value is shown once, by
``create``; the table keeps only ``scrypt(secret, per-token salt)`` (stdlib
``hashlib.scrypt``, n=2**14, r=8, p=1), compared with ``hmac.compare_digest``.

Creating and revoking a token each append their audit record (``token.create``,
``token.revoke``) in the same transaction. A name is unique among the tokens not
revoked, guarded by a partial unique index: revoking frees the name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from modelport.access import ALL_MODELS, Role, parse_role, validate_pattern
from modelport.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from modelport.registry import audit
from modelport.registry.schema import tokens
from modelport.registry.store import SqlRegistryStore
from modelport.registry.times import as_utc, utcnow
from modelport.uri import validate_name

PREFIX = "mp_"
LOOKUP_HEX = 16
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often
MAX_LIFETIME = timedelta(days=3650)
MAX_RATE = 1_000_000.0
_MAXMEM = 64 * 1024 * 1024  # scrypt with these parameters needs 16 MiB
_VALUE_RE = re.compile(rf"{PREFIX}([0-9a-f]{{{LOOKUP_HEX}}})_([A-Za-z0-9_-]{{1,256}})")


@dataclass(frozen=True)
class Token:
    """One token as stored, without its hash (and never its value)."""

    name: str
    role: Role
    models: str
    lookup: str
    rate: float | None
    burst: int | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None

    @property
    def prefix(self) -> str:
        """The public start of the token's value, ``mp_<lookup>``: enough to recognise a
        token in a config or a leak, useless to authenticate."""
        return f"{PREFIX}{self.lookup}"

    def status(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601, plus ``prefix`` and ``status``)."""
        d = {k: v.isoformat() if isinstance(v, datetime) else v
             for k, v in asdict(self).items()}
        d["role"] = self.role.value
        d["prefix"] = self.prefix
        d["status"] = self.status()
        return d


@dataclass(frozen=True)
class IssuedToken:
    """A token just created and its value, which exists nowhere else: show it once."""

    token: Token
    value: str

    def __repr__(self) -> str:  # keep the value out of logs and tracebacks
        return f"IssuedToken(token={self.token.name!r}, value='{self.token.prefix}_…')"


def split_value(value: str) -> tuple[str, str]:
    """``(lookup, secret)`` of a token value; AuthenticationError if it is not one."""
    found = _VALUE_RE.fullmatch(value)
    if found is None:
        raise AuthenticationError("invalid token")
    return found[1], found[2]


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) of ``secret`` under ``salt`` (random if None)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=SCRYPT_LEN, maxmem=_MAXMEM)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def check_secret(stored: str, secret: str) -> bool:
    """Whether ``secret`` hashes to ``stored`` (a constant-time comparison)."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        got = hashlib.scrypt(secret.encode(), salt=salt, n=int(n), r=int(r), p=int(p),
                             dklen=len(expected), maxmem=_MAXMEM)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _token(r: RowMapping) -> Token:
    return Token(
        name=r["name"], role=Role(r["role"]), models=r["models"], lookup=r["lookup"],
        rate=r["rate"], burst=r["burst"],
        created_at=as_utc(r["created_at"]),  # type: ignore[arg-type]
        created_by=r["created_by"], expires_at=as_utc(r["expires_at"]),
        revoked_at=as_utc(r["revoked_at"]), revoked_by=r["revoked_by"],
        last_used_at=as_utc(r["last_used_at"]),
    )


def _limits(rate: float | None, burst: int | None) -> tuple[float | None, int | None]:
    """Validated (rate, burst); a rate without a burst may burst one second's worth."""
    if rate is None:
        if burst is not None:
            raise InvalidInputError("a burst needs a rate (requests per second) too")
        return None, None
    if not math.isfinite(rate) or not 0 < rate <= MAX_RATE:
        raise InvalidInputError(f"rate must be a number of requests per second in "
                                f"(0, {MAX_RATE:,.0f}], got {rate!r}")
    if burst is None:
        burst = max(1, math.ceil(rate))
    if not 1 <= burst <= MAX_RATE:
        raise InvalidInputError(f"burst must be 1 to {MAX_RATE:,.0f} requests, got {burst!r}")
    return float(rate), int(burst)


def _audited(t: Token) -> dict[str, Any]:
    # What the audit record keeps of a token: never its hash, and its value never existed
    # anywhere but in the creator's hands.
    return {"name": t.name, "role": t.role.value, "models": t.models, "prefix": t.prefix,
            "rate": t.rate, "burst": t.burst,
            "expires_at": t.expires_at.isoformat() if t.expires_at else None}


class TokenStore:
    """The registry's API tokens (``Registry.tokens``)."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self.store = store

    def create(self, name: str, role: Role | str, *, actor: str, models: str = ALL_MODELS,
               expires_in: timedelta | None = None, rate: float | None = None,
               burst: int | None = None, reason: str = "") -> IssuedToken:
        """A new token; its value is in the result and nowhere else.

        ConflictError when a token of that name is not revoked (an expired one too:
        revoke it first). An admin token always covers every model.
        """
        validate_name(name, "token name")
        role = role if isinstance(role, Role) else parse_role(role)
        validate_pattern(models)
        if role is Role.ADMIN and models != ALL_MODELS:
            raise InvalidInputError("an admin token covers every model: drop --models")
        if expires_in is not None and not timedelta(0) < expires_in <= MAX_LIFETIME:
            raise InvalidInputError(f"a token expires after more than 0 s and at most "
                                    f"{MAX_LIFETIME.days} days, got {expires_in}")
        rate, burst = _limits(rate, burst)
        lookup, secret = secrets.token_hex(LOOKUP_HEX // 2), secrets.token_urlsafe(32)
        now = utcnow()
        values = dict(name=name, lookup=lookup, role=role.value, models=models,
                      hash=hash_secret(secret), rate=rate, burst=burst, created_at=now,
                      created_by=actor, expires_at=now + expires_in if expires_in else None,
                      revoked_at=None, revoked_by=None, last_used_at=None)
        try:
            with self.store.writing() as conn:
                held = conn.execute(sa.select(tokens).where(
                    tokens.c.name == name, tokens.c.revoked_at.is_(None))).mappings().first()
                if held is not None:
                    raise ConflictError(self._held_message(_token(held), now))
                conn.execute(sa.insert(tokens).values(**values))
                token = _token(values)  # type: ignore[arg-type]
                audit.append(conn, actor=actor, action=audit.TOKEN_CREATE,
                             target=f"token:{name}", after=_audited(token), reason=reason)
        except sa.exc.IntegrityError:  # a concurrent create of the same name won
            raise ConflictError(f"a token named {name!r} already exists") from None
        return IssuedToken(token, f"{PREFIX}{lookup}_{secret}")

    @staticmethod
    def _held_message(held: Token, now: datetime) -> str:
        if held.status(now) == "expired":
            return (f"token {held.name!r} expired at {held.expires_at:%Y-%m-%d %H:%M} UTC but "
                    f"still holds its name: revoke it first (modelport tokens revoke "
                    f"{held.name})")
        return f"a token named {held.name!r} already exists"

    def get(self, name: str) -> Token:
        """The token ``name`` that is not revoked (NotFoundError if there is none)."""
        validate_name(name, "token name")
        with self.store.reading() as conn:
            row = conn.execute(sa.select(tokens).where(
                tokens.c.name == name, tokens.c.revoked_at.is_(None))).mappings().first()
        if row is None:
            raise NotFoundError(f"no token named {name!r} (revoked tokens are not listed "
                                "by name)")
        return _token(row)

    def list(self, *, include_revoked: bool = False) -> list[Token]:
        """Tokens oldest first (revoked ones too, if asked)."""
        q = sa.select(tokens).order_by(tokens.c.id)
        if not include_revoked:
            q = q.where(tokens.c.revoked_at.is_(None))
        with self.store.reading() as conn:
            return [_token(r) for r in conn.execute(q).mappings()]

    def revoke(self, name: str, *, actor: str, reason: str = "") -> Token:
        """Revoke the token ``name`` now (NotFoundError if no such token is live)."""
        validate_name(name, "token name")
        now = utcnow()
        with self.store.writing() as conn:
            row = conn.execute(sa.select(tokens).where(
                tokens.c.name == name, tokens.c.revoked_at.is_(None)).with_for_update()
            ).mappings().first()
            if row is None:
                raise NotFoundError(f"no live token named {name!r}")
            conn.execute(sa.update(tokens).where(tokens.c.id == row["id"])
                         .values(revoked_at=now, revoked_by=actor))
            before = _token(row)
            audit.append(conn, actor=actor, action=audit.TOKEN_REVOKE, target=f"token:{name}",
                         before=_audited(before), after={"revoked_at": now.isoformat()},
                         reason=reason)
        return Token(**{**asdict(before), "revoked_at": now, "revoked_by": actor})

    def verify(self, value: str) -> Token:
        """The token whose value this is, if it is active; else AuthenticationError.

        An unknown or wrong value says only "invalid token"; a right one that was
        revoked or has expired says so (only its holder can learn that).
        """
        token = self.identify(value)
        check_active(token)
        return token

    def identify(self, value: str) -> Token:
        """The token whose value this is, whatever its status (revoked and expired ones
        too); AuthenticationError("invalid token") for an unknown or wrong value.

        One indexed read and one scrypt. An unknown lookup id answers without hashing:
        faster, which tells a guesser only that a random 64-bit id is unused.
        """
        lookup, secret = split_value(value)
        with self.store.reading() as conn:
            row = conn.execute(sa.select(tokens).where(tokens.c.lookup == lookup)
                               ).mappings().first()
        if row is None or not check_secret(row["hash"], secret):
            raise AuthenticationError("invalid token")
        return _token(row)

    def by_lookup(self, lookup: str) -> Token | None:
        """The token with this lookup id as it is now (no secret check: for a server that
        verified this very value earlier and re-reads its state)."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(tokens).where(tokens.c.lookup == lookup)
                               ).mappings().first()
        return None if row is None else _token(row)

    def touch(self, lookup: str, now: datetime | None = None) -> None:
        """Set ``last_used_at`` unless it was set less than a minute ago."""
        now = now or utcnow()
        with self.store.writing() as conn:
            conn.execute(sa.update(tokens).where(
                tokens.c.lookup == lookup,
                sa.or_(tokens.c.last_used_at.is_(None),
                       tokens.c.last_used_at < now - TOUCH_EVERY)).values(last_used_at=now))

    def has_active(self, now: datetime | None = None) -> bool:
        """Whether any token is neither revoked nor expired."""
        now = now or utcnow()
        q = sa.select(tokens.c.id).where(
            tokens.c.revoked_at.is_(None),
            sa.or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now)).limit(1)
        with self.store.reading() as conn:
            return conn.execute(q).first() is not None


def check_active(token: Token, now: datetime | None = None) -> None:
    """AuthenticationError if ``token`` is revoked or expired."""
    status = token.status(now)
    if status == "revoked":
        raise AuthenticationError(f"token {token.name!r} has been revoked")
    if status == "expired":
        raise AuthenticationError(f"token {token.name!r} has expired")


__all__ = ["PREFIX", "IssuedToken", "Token", "TokenStore", "check_active", "check_secret",
           "hash_secret", "split_value"]
