"""API tokens on SQLite and PostgreSQL: shown once, stored as a salted scrypt hash,
verified, expired, revoked, their names freed by revocation, every change audited and
a refused one leaving nothing behind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from modelport.access import Role
from modelport.client import Registry
from modelport.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    InvalidNameError,
    NotFoundError,
)
from modelport.registry.schema import tokens as tokens_t
from modelport.registry.store import SqlRegistryStore
from modelport.registry.times import utcnow
from modelport.registry.tokens import check_secret, hash_secret, split_value


def rows(reg: Registry) -> list[dict]:
    assert isinstance(reg.store, SqlRegistryStore)
    with reg.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(tokens_t).order_by(tokens_t.c.id))
                .mappings()]


def set_column(reg: Registry, name: str, **values: object) -> None:
    """Change a token's row behind the store's back (time passing, say)."""
    assert isinstance(reg.store, SqlRegistryStore)
    with reg.store.engine.begin() as conn:
        conn.execute(sa.update(tokens_t).where(tokens_t.c.name == name).values(**values))


def test_created_token_is_shown_once_and_verifies(registry: Registry) -> None:
    issued = registry.tokens.create("ci", "predictor", actor="alice", models="iris*",
                                    rate=5)
    lookup, secret = split_value(issued.value)
    assert issued.value == f"mp_{lookup}_{secret}" and len(lookup) == 16
    assert len(secret) >= 43  # token_urlsafe(32)
    assert secret not in repr(issued)  # the value stays out of logs and tracebacks
    token = registry.tokens.verify(issued.value)
    assert (token.name, token.role, token.models, token.created_by) == (
        "ci", Role.PREDICTOR, "iris*", "alice")
    assert (token.rate, token.burst, token.status()) == (5.0, 5, "active")
    assert token.prefix == f"mp_{lookup}"
    [listed] = registry.tokens.list()
    shown = listed.to_dict()
    assert shown["status"] == "active" and shown["role"] == "predictor"
    assert secret not in str(shown) and "hash" not in shown


def test_only_a_salted_scrypt_hash_is_stored(registry: Registry) -> None:
    a = registry.tokens.create("a", "reader", actor="alice")
    b = registry.tokens.create("b", "reader", actor="alice")
    stored = {r["name"]: r for r in rows(registry)}
    for issued in (a, b):
        _, secret = split_value(issued.value)
        row = stored[issued.token.name]
        assert all(secret not in str(v) for v in row.values())  # no column holds it
        scheme, n, r, p, _salt, _digest = row["hash"].split("$")
        assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
        assert check_secret(row["hash"], secret)
        assert not check_secret(row["hash"], secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert stored["a"]["hash"].split("$")[4] != stored["b"]["hash"].split("$")[4]  # salts
    # The same secret under two salts hashes differently: no table of precomputed hashes.
    assert hash_secret("same") != hash_secret("same")
    assert not check_secret("md5$whatever", "same")
    assert not check_secret("not a hash", "same")


@pytest.mark.parametrize("value", [
    "", "mp_", "mp_0123456789abcdef_", "mp_0123456789abcdef", "xx_0123456789abcdef_secret",
    "mp_0123456789ABCDEF_secret", "mp_0123_secret", "mp_../../etc/passwd_x",
    "mp_0123456789abcdef_' OR 1=1 --", "mp_0123456789abcdeg_secret", "mp_\x00" * 10,
])
def test_values_that_are_not_tokens_are_refused_alike(registry: Registry, value: str) -> None:
    registry.tokens.create("ci", "reader", actor="alice")
    with pytest.raises(AuthenticationError, match=r"^invalid token$"):
        registry.tokens.verify(value)


def test_wrong_secret_and_unknown_id_say_the_same(registry: Registry) -> None:
    issued = registry.tokens.create("ci", "reader", actor="alice")
    lookup, secret = split_value(issued.value)
    for wrong in (f"mp_{lookup}_{secret[:-2]}", f"mp_{lookup}_{secret}x",
                  f"mp_{'0' * 16}_{secret}", f"mp_{lookup}_{secret.upper()}"):
        with pytest.raises(AuthenticationError, match=r"^invalid token$"):
            registry.tokens.verify(wrong)


def test_expired_token_is_refused_and_holds_its_name(registry: Registry) -> None:
    issued = registry.tokens.create("ci", "deployer", actor="alice",
                                    expires_in=timedelta(days=30))
    assert issued.token.expires_at is not None
    assert timedelta(days=30) - timedelta(seconds=5) < issued.token.expires_at - utcnow()
    assert registry.tokens.has_active()
    set_column(registry, "ci", expires_at=utcnow() - timedelta(seconds=1))  # time passes
    with pytest.raises(AuthenticationError, match="'ci' has expired"):
        registry.tokens.verify(issued.value)
    assert registry.tokens.identify(issued.value).status() == "expired"
    assert not registry.tokens.has_active()
    with pytest.raises(ConflictError, match="revoke it first"):
        registry.tokens.create("ci", "reader", actor="alice")
    registry.tokens.revoke("ci", actor="alice")
    registry.tokens.create("ci", "reader", actor="alice")


def test_revoke_refuses_the_token_and_frees_the_name(registry: Registry) -> None:
    old = registry.tokens.create("ci", "predictor", actor="alice")
    revoked = registry.tokens.revoke("ci", actor="bob", reason="leaked")
    assert (revoked.status(), revoked.revoked_by) == ("revoked", "bob")
    with pytest.raises(AuthenticationError, match="'ci' has been revoked"):
        registry.tokens.verify(old.value)
    with pytest.raises(NotFoundError, match="no live token named 'ci'"):
        registry.tokens.revoke("ci", actor="bob")
    with pytest.raises(NotFoundError):
        registry.tokens.get("ci")
    assert registry.tokens.list() == [] and not registry.tokens.has_active()
    new = registry.tokens.create("ci", "reader", actor="alice")  # the name is free again
    assert new.token.lookup != old.token.lookup
    assert registry.tokens.verify(new.value).role is Role.READER
    with pytest.raises(AuthenticationError, match="revoked"):
        registry.tokens.verify(old.value)  # the old value stays dead
    assert [t.status() for t in registry.tokens.list(include_revoked=True)] == [
        "revoked", "active"]
    assert registry.tokens.get("ci").lookup == new.token.lookup


def test_a_live_name_cannot_be_taken_twice_even_concurrently(registry: Registry) -> None:
    def attempt(i: int) -> str:
        with Registry(settings=registry.settings) as reg:
            try:
                reg.tokens.create("shared", "reader", actor=f"user{i}")
                return "created"
            except ConflictError:
                return "conflict"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert sorted(outcomes) == ["conflict"] * 5 + ["created"]
    assert len(rows(registry)) == 1
    assert [r.action for r in registry.audit.list()] == ["token.create"]


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"name": "bad name"}, InvalidNameError, "invalid token name"),
    ({"name": "../x"}, InvalidNameError, "invalid token name"),
    ({"role": "boss"}, InvalidInputError, "unknown role 'boss'"),
    ({"models": "iris/*"}, InvalidInputError, "invalid model pattern"),
    ({"models": ""}, InvalidInputError, "invalid model pattern"),
    ({"models": "iris; DROP TABLE tokens"}, InvalidInputError, "invalid model pattern"),
    ({"role": "admin", "models": "iris*"}, InvalidInputError, "admin token covers every"),
    ({"expires_in": timedelta(0)}, InvalidInputError, "expires after more than 0"),
    ({"expires_in": timedelta(days=-1)}, InvalidInputError, "expires after"),
    ({"expires_in": timedelta(days=4000)}, InvalidInputError, "at most 3650 days"),
    ({"rate": 0.0}, InvalidInputError, "rate must be"),
    ({"rate": float("nan")}, InvalidInputError, "rate must be"),
    ({"rate": -1.0}, InvalidInputError, "rate must be"),
    ({"burst": 10}, InvalidInputError, "a burst needs a rate"),
    ({"rate": 1.0, "burst": 0}, InvalidInputError, "burst must be"),
])
def test_bad_input_is_refused_and_writes_nothing(registry: Registry, kwargs: dict,
                                                 error: type[Exception], message: str) -> None:
    args = {"name": "ci", "role": "reader", **kwargs}
    with pytest.raises(error, match=message):
        registry.tokens.create(args.pop("name"), args.pop("role"), actor="alice", **args)
    assert rows(registry) == []
    assert registry.audit.head() == (0, "0" * 64)


def test_create_and_revoke_are_audited_without_secrets(registry: Registry) -> None:
    issued = registry.tokens.create("ci", "deployer", actor="alice", models="fraud-*",
                                    rate=2.5, burst=10, reason="pipeline")
    registry.tokens.revoke("ci", actor="bob", reason="rotated")
    with pytest.raises(ConflictError):  # a refused change leaves no record
        registry.tokens.create("other", "reader", actor="x")
        registry.tokens.create("other", "reader", actor="x")
    created, revoked, _other = registry.audit.list()
    assert (created.action, created.target, created.actor, created.reason) == (
        "token.create", "token:ci", "alice", "pipeline")
    assert created.after == {"name": "ci", "role": "deployer", "models": "fraud-*",
                             "prefix": issued.token.prefix, "rate": 2.5, "burst": 10,
                             "expires_at": None}
    assert (revoked.action, revoked.target, revoked.actor, revoked.reason) == (
        "token.revoke", "token:ci", "bob", "rotated")
    assert revoked.before == created.after and set(revoked.after) == {"revoked_at"}
    _, secret = split_value(issued.value)
    stored = rows(registry)[0]["hash"]
    for record in registry.audit.list():
        assert secret not in str(record) and stored not in str(record)
    assert registry.audit.verify().ok
    assert len(registry.audit.list(action="token")) == 3


def test_last_used_is_written_at_most_once_a_minute(registry: Registry) -> None:
    issued = registry.tokens.create("ci", "reader", actor="alice")
    lookup = issued.token.lookup
    assert registry.tokens.get("ci").last_used_at is None
    t0 = utcnow()
    registry.tokens.touch(lookup, t0)
    registry.tokens.touch(lookup, t0 + timedelta(seconds=30))
    assert registry.tokens.get("ci").last_used_at == t0
    registry.tokens.touch(lookup, t0 + timedelta(seconds=61))
    assert registry.tokens.get("ci").last_used_at == t0 + timedelta(seconds=61)
    assert [r.action for r in registry.audit.list()] == ["token.create"]  # not a change
