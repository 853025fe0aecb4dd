"""The traffic split: weights, sticky assignment, and its stability across processes."""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

import pytest

from modelport.registry.entities import Mode
from modelport.serving.router import Route, Router, header, sticky_bucket


class Side:
    """Stands in for a loaded deployment: the router only reads ``version``."""

    def __init__(self, version: int) -> None:
        self.version = version


def route(mode: Mode, weight: float, sticky: bytes | None = None) -> Route:
    return Route(Side(1), Side(2), mode, weight, sticky, b"iris/2")  # type: ignore[arg-type]


KEYS = [f"user-{i}".encode() for i in range(5000)]


def test_weights_zero_and_hundred_are_absolute() -> None:
    router = Router(random.Random(1))
    for mode in (Mode.CANARY, Mode.BLUEGREEN):
        assert not any(router.to_candidate(route(mode, 0), ()) for _ in range(1000))
        assert all(router.to_candidate(route(mode, 100), ()) for _ in range(1000))


def test_shadow_and_no_candidate_never_route_to_the_candidate() -> None:
    router = Router(random.Random(1))
    assert not any(router.to_candidate(route(Mode.SHADOW, 100), ()) for _ in range(100))
    lone = Route(Side(1))  # type: ignore[arg-type]
    assert not router.to_candidate(lone, ())


@pytest.mark.parametrize("weight", [5.0, 30.0, 50.0, 92.5])
def test_random_split_is_near_the_weight(weight: float) -> None:
    router = Router(random.Random(42))
    n = 20_000
    hits = sum(router.to_candidate(route(Mode.CANARY, weight), ()) for _ in range(n))
    assert abs(hits / n * 100 - weight) < 2.0, hits


@pytest.mark.parametrize("weight", [10.0, 30.0, 75.0])
def test_sticky_split_over_many_keys_is_near_the_weight(weight: float) -> None:
    router = Router(random.Random(0))
    r = route(Mode.CANARY, weight, b"x-user")
    hits = sum(router.to_candidate(r, [(b"x-user", k)]) for k in KEYS)
    assert abs(hits / len(KEYS) * 100 - weight) < 3.0, hits


def test_sticky_key_keeps_its_side_on_any_router() -> None:
    r = route(Mode.CANARY, 30, b"x-user")
    first = [Router(random.Random(1)).to_candidate(r, [(b"x-user", k)]) for k in KEYS[:500]]
    again = [Router(random.Random(99)).to_candidate(r, [(b"a", b"b"), (b"x-user", k)])
             for k in KEYS[:500]]
    assert first == again
    assert 50 < sum(first) < 250  # both sides are used


def test_raising_the_weight_only_adds_keys_to_the_candidate() -> None:
    router = Router()
    low = {k for k in KEYS if router.to_candidate(route(Mode.CANARY, 5, b"k"), [(b"k", k)])}
    high = {k for k in KEYS if router.to_candidate(route(Mode.CANARY, 50, b"k"), [(b"k", k)])}
    assert low and low < high


def test_missing_sticky_header_falls_back_to_random() -> None:
    router = Router(random.Random(3))
    r = route(Mode.CANARY, 50, b"x-user")
    sides = {router.to_candidate(r, [(b"other", b"v")]) for _ in range(200)}
    assert sides == {True, False}


def test_buckets_are_the_same_in_another_process() -> None:
    """Python's hash() is salted per process; the sticky hash must not be."""
    keys = [k.decode() for k in KEYS[:50]]
    code = ("import sys; from modelport.serving.router import sticky_bucket; "
            "print([sticky_bucket(k.encode(), b'iris/2') for k in sys.argv[1:]])")
    out = subprocess.run([sys.executable, "-c", code, *keys], capture_output=True, text=True,
                         timeout=60, check=True, env={"PYTHONHASHSEED": "random",
                                                      **_env()})
    assert out.stdout.strip() == str([sticky_bucket(k.encode(), b"iris/2") for k in keys])


def test_bucket_range_and_salt() -> None:
    buckets = [sticky_bucket(k, b"s") for k in KEYS]
    assert all(0 <= b < 100 for b in buckets)
    other = [sticky_bucket(k, b"t") for k in KEYS]
    assert buckets != other  # a new rollout exposes a different set of clients first


def test_header_lookup() -> None:
    headers = [(b"host", b"x"), (b"x-user", b"42"), (b"x-user", b"43")]
    assert header(headers, b"x-user") == b"42"
    assert header(headers, b"nope") is None


def _env() -> dict[str, Any]:
    import os

    return dict(os.environ)
