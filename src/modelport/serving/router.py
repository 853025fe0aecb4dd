"""Which side of a split answers a request: stable or candidate.

A ``Route`` is an endpoint's routing table at one instant: the loaded stable
deployment, optionally a loaded (and warmed) candidate with its mode and weight. The
repository replaces it with one assignment when the desired state or what is loaded
changes, so a request always sees one consistent table.

Canary and blue-green send a request to the candidate when its bucket (in [0, 100)) is
below the weight. The bucket comes from a hash of the sticky header's value when the
deployment names one and the request carries it, so a client keeps its side on every
server process and across restarts (A/B tests); otherwise it is random per request.
The hash is salted with the endpoint and candidate, so each rollout exposes a different
set of clients first, while raising the weight only ever adds clients to the candidate.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelport.registry.entities import Mode

if TYPE_CHECKING:
    from modelport.serving.deployment import Deployment

Headers = Sequence[tuple[bytes, bytes]]
BUCKETS = 10_000  # buckets of 0.01 %: weights such as 2.5 are honoured exactly


@dataclass(frozen=True)
class Route:
    """An endpoint's routing table: stable, and the candidate taking part (if any)."""

    stable: Deployment | None
    candidate: Deployment | None = None
    mode: Mode | None = None
    weight: float = 0.0
    sticky: bytes | None = None  # the header name, lower-cased (as ASGI gives them)
    salt: bytes = b""

    @property
    def shadow(self) -> bool:
        """True when the candidate gets copies, never answers."""
        return self.candidate is not None and self.mode is Mode.SHADOW

    def versions(self) -> list[int]:
        """Versions in the table (stable first)."""
        return [d.version for d in (self.stable, self.candidate) if d is not None]


def sticky_bucket(value: bytes, salt: bytes = b"") -> float:
    """The bucket in [0, 100) of a sticky key: the same on every process and run
    (blake2b, not Python's per-process salted ``hash``)."""
    digest = hashlib.blake2b(value, digest_size=8, key=salt[:64]).digest()
    return (int.from_bytes(digest, "big") % BUCKETS) * (100.0 / BUCKETS)


def header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case) in a raw ASGI header list."""
    for key, value in headers:
        if key == name:
            return value
    return None


class Router:
    """Decides the side of each request; ``rng`` is seedable for tests."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def to_candidate(self, route: Route, headers: Headers) -> bool:
        """True when this request goes to the candidate (canary and blue-green only)."""
        weight = route.weight
        if route.candidate is None or route.mode is Mode.SHADOW or weight <= 0.0:
            return False
        if weight >= 100.0:
            return True
        if route.sticky is not None:
            value = header(headers, route.sticky)
            if value is not None:
                return sticky_bucket(value, route.salt) < weight
        return self._random() * 100.0 < weight


__all__ = ["BUCKETS", "Route", "Router", "header", "sticky_bucket"]
