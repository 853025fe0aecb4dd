"""Rate limits in one process: a token bucket per API token, failed logins per address.

Both live in the worker's memory: with ``--workers N`` each worker keeps its own, so a
token's effective rate is up to N times its limit, and an address gets that many
failed attempts per worker. Times are ``time.monotonic()`` seconds, passed in so the
callers read the clock once per request (and tests can drive it).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field


def retry_after(seconds: float) -> int:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


@dataclass(slots=True)
class TokenBucket:
    """``rate`` requests per second on average, up to ``burst`` at once."""

    rate: float
    burst: int
    level: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.level = float(self.burst)

    def take(self, now: float) -> float:
        """Take one request's worth: 0.0 if allowed, else the seconds until one is."""
        if self.updated is not None:
            self.level = min(float(self.burst), self.level + (now - self.updated) * self.rate)
        self.updated = now
        if self.level >= 1.0:
            self.level -= 1.0
            return 0.0
        return (1.0 - self.level) / self.rate


class FailureLimiter:
    """Counts failed authentications per client address over a sliding ``window``;
    an address with ``limit`` failures in it is blocked until the oldest one ages out.

    At most ``max_addresses`` are tracked (the least recently failing are forgotten
    first), so a flood of addresses cannot grow memory without bound.
    """

    def __init__(self, limit: int = 10, window: float = 60.0, max_addresses: int = 10_000
                 ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def blocked(self, address: str, now: float) -> float:
        """0.0 if ``address`` may try, else the seconds until it may again."""
        times = self._failures.get(address)
        if times is None:
            return 0.0
        self._expire(times, now)
        if not times:
            del self._failures[address]
            return 0.0
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window - now

    def fail(self, address: str, now: float) -> None:
        """Record one failed authentication from ``address``."""
        times = self._failures.pop(address, None)
        if times is None:
            times = deque(maxlen=self.limit)
            while len(self._failures) >= self.max_addresses:
                self._failures.popitem(last=False)
        self._expire(times, now)
        times.append(now)
        self._failures[address] = times  # now the most recent

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()


__all__ = ["FailureLimiter", "TokenBucket", "retry_after"]
