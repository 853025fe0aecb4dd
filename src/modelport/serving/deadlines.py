"""The request timeout, for every in-flight request at once.

``asyncio.timeout`` makes a timeout object and a loop timer per request, a few µs
each: a measurable share of a small model's request. Every request of a server has the
same timeout, so deadlines expire in arrival order, and one timer, set for the oldest
unfinished request, serves them all. Expiry cancels the request's task, as
``asyncio.timeout`` does, and ``Deadline.expired`` tells that cancellation apart from
any other (a shutdown).
"""

from __future__ import annotations

import asyncio
from collections import deque


class Deadline:
    """One request's deadline; ``done()`` when it finishes, in time or not."""

    __slots__ = ("at", "expired", "finished", "task")

    def __init__(self, task: asyncio.Task[object], at: float) -> None:
        self.task = task
        self.at = at
        self.expired = False
        self.finished = False

    def done(self) -> bool:
        """Finish the request: True if it had expired (its task was cancelled for it;
        that cancellation is taken back, once, so the caller can answer 504 instead)."""
        if not self.finished:
            self.finished = True
            if self.expired:
                self.task.uncancel()
        return self.expired


class Deadlines:
    """Cancels requests still running ``timeout`` seconds after they started."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._pending: deque[Deadline] = deque()  # in arrival order, so in deadline order
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> Deadline:
        """The current task's deadline, ``timeout`` seconds from now."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests run several): the old timer is gone
            self._loop, self._timer = loop, None
            self._pending.clear()
        task = asyncio.current_task()
        assert task is not None
        deadline = Deadline(task, loop.time() + self.timeout)
        pending = self._pending
        while pending and pending[0].finished:  # keep the queue about as long as in flight
            pending.popleft()
        pending.append(deadline)
        if self._timer is None:
            self._timer = loop.call_at(deadline.at, self._expire)
        return deadline

    def _expire(self) -> None:
        self._timer = None
        pending = self._pending
        loop = asyncio.get_running_loop()
        now = loop.time()
        while pending and (pending[0].finished or pending[0].at <= now):
            deadline = pending.popleft()
            if not deadline.finished:
                deadline.expired = True
                deadline.task.cancel()
        if pending:
            self._timer = loop.call_at(pending[0].at, self._expire)
