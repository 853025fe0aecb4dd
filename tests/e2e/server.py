"""Run a real ``modelport serve`` process on a free loopback port, for e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a server against ``home`` (nothing inherited leaks in)."""
    env = {**os.environ, "MODELPORT_HOME": str(home), "MODELPORT_USER": "tester"}
    for key in ("MODELPORT_DATABASE_URL", "MODELPORT_ARTIFACTS", "MODELPORT_TRUSTED_TYPES",
                "PROMETHEUS_MULTIPROC_DIR", "MODELPORT_SIGNING_KEY", "MODELPORT_VERIFY_KEYS",
                "MODELPORT_ENCRYPTION_KEY"):
        env.pop(key, None)
    env.update(extra)
    return env


class ServerProcess:
    """``python -m modelport serve ARGS --port P`` as a child process.

    Use as a context manager: starts, waits for ``/v2/health/ready``, and on exit sends
    SIGTERM and waits (killing after a timeout so a hung server cannot hang the suite).
    """

    def __init__(self, home: Path, args: Sequence[str], *, env: dict[str, str] | None = None,
                 ready_timeout: float = 90.0, wait_ready: bool = True,
                 ca: Path | None = None) -> None:
        self.home = home
        self.port = free_port()
        # With ``ca`` (the certificate a --tls-cert server presents) it is spoken to over
        # HTTPS, verified against that certificate alone.
        self.verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca)) if ca is not None else True)
        self.url = f"{'https' if ca is not None else 'http'}://127.0.0.1:{self.port}"
        self.args = [*args, "--port", str(self.port)]
        self.env = server_env(home, **(env or {}))
        self.ready_timeout = ready_timeout
        self.wait_ready = wait_ready
        self.log_path = home.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelport", "serve", *self.args],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        if self.wait_ready:
            self.wait_until_ready()
        return self

    def wait_until_ready(self) -> None:
        """Poll readiness; fail with the server's log if it never gets there.

        With ``--workers N`` each worker loads its models on its own and any of them may
        take a new connection, so one ready answer proves little: wait for a run of
        ready answers on fresh connections (a worker still loading breaks the run).
        """
        needed = 20 if "--workers" in self.args else 1
        run = 0
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                ok = httpx.get(f"{self.url}/v2/health/ready", timeout=2, verify=self.verify,
                               headers={"connection": "close"}).status_code == 200
            except httpx.TransportError:
                ok = False
            run = run + 1 if ok else 0
            if run >= needed:
                return
            time.sleep(0.1 if not ok else 0.01)
        raise AssertionError(f"server not ready after {self.ready_timeout}s:\n{self.log()}")

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; returns the exit code (kills after ``timeout``)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def __exit__(self, *exc: object) -> None:
        self.terminate()
        self._log.close()
