"""Run one step's child process: its own process group, a deadline, cancellation, and
its output read line by line (kept as a tail, passed to a callback as it arrives).

The child leads a new session so that stopping it (timeout, Ctrl-C, SIGTERM) also
stops whatever it started (``sh -c``, a training script's workers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

TAIL_LINES = 200
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_POLL = 0.05
_READER_JOIN = 2.0  # a grandchild may hold the pipe open after the child exits

LineSink = Callable[[str, str], None]  # (stream name "stdout"|"stderr", line)


@dataclass
class ProcessResult:
    """How a child ended: its exit code, or that it was stopped, and what it printed."""

    returncode: int | None
    seconds: float
    timed_out: bool = False
    cancelled: bool = False
    stdout: str = ""  # the whole stdout, only when it was kept rather than shown
    tail: list[str] = field(default_factory=list)


class _Tail:
    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=TAIL_LINES)
        self.lock = threading.Lock()

    def add(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)


def _read(pipe: IO[bytes], name: str, tail: _Tail | None, sink: LineSink | None,
          keep: list[str] | None) -> None:
    for raw in iter(pipe.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if keep is not None:
            keep.append(line)
            continue
        if tail is not None:
            tail.add(line)
        if sink is not None:
            sink(name, line)
    pipe.close()


def run_process(argv: list[str], *, cwd: Path, env: Mapping[str, str],
                timeout: float | None = None, cancel: threading.Event | None = None,
                on_line: LineSink | None = None, keep_stdout: bool = False) -> ProcessResult:
    """Run ``argv`` to its end, its deadline or ``cancel``; raises ``OSError`` if it cannot
    start (e.g. the program does not exist)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    tail = _Tail()
    kept: list[str] | None = [] if keep_stdout else None
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=_read, args=(proc.stdout, "stdout", tail, on_line, kept),
                         daemon=True),
        threading.Thread(target=_read, args=(proc.stderr, "stderr", tail, on_line, None),
                         daemon=True),
    ]
    for r in readers:
        r.start()
    timed_out = cancelled = False
    deadline = started + timeout if timeout else None
    while proc.poll() is None:
        if cancel is not None and cancel.is_set():
            cancelled = True
        elif deadline is not None and time.monotonic() >= deadline:
            timed_out = True
        if cancelled or timed_out:
            stop_group(proc)
            break
        time.sleep(_POLL)
    for r in readers:
        r.join(_READER_JOIN)
    with tail.lock:
        lines = list(tail.lines)
    return ProcessResult(
        returncode=None if (timed_out or cancelled) else proc.returncode,
        seconds=time.monotonic() - started, timed_out=timed_out, cancelled=cancelled,
        stdout="\n".join(kept or []), tail=lines,
    )


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, then SIGKILL it after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # The leader may be gone while others in its group still run: finish them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


__all__ = ["KILL_GRACE", "TAIL_LINES", "ProcessResult", "run_process", "stop_group"]
