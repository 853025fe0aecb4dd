"""Helpers for end-to-end tests: run the real ``modelport`` CLI in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 120


@dataclass(frozen=True)
class Result:
    """What one CLI run returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON (fails the test with the run's output if it is not)."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"stdout of {self} is not JSON")

    def __str__(self) -> str:
        return (f"modelport {' '.join(self.args)} -> exit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a CLI run against ``home`` (nothing inherited can leak in)."""
    env = {**os.environ, "MODELPORT_HOME": str(home), "MODELPORT_USER": "tester"}
    for key in ("MODELPORT_DATABASE_URL", "MODELPORT_ARTIFACTS", "MODELPORT_TRUSTED_TYPES",
                "MODELPORT_SIGNING_KEY", "MODELPORT_VERIFY_KEYS", "MODELPORT_ENCRYPTION_KEY"):
        env.pop(key, None)
    env.update(extra)
    return env


class Cli:
    """Runs ``python -m modelport ARGS`` with ``MODELPORT_HOME=home``; ignores exit codes."""

    def run(self, home: Path, *args: str | os.PathLike[str], env: dict[str, str] | None = None,
            cwd: Path | None = None, timeout: float = TIMEOUT) -> Result:
        """One CLI run, waited for (at most ``timeout`` seconds: then the run and every
        process it started, such as a local Ray, are killed and the test fails)."""
        argv = [str(a) for a in args]
        with subprocess.Popen(
            [sys.executable, "-m", "modelport", *argv], env=cli_env(home, **(env or {})),
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        ) as proc:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                stdout, stderr = proc.communicate()
                pytest.fail(f"modelport {' '.join(argv)} still running after {timeout:g}s"
                            f"\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr[-4000:]}")
        return Result(tuple(argv), proc.returncode, stdout, stderr)

    def start(self, home: Path, *args: str | os.PathLike[str], env: dict[str, str] | None = None,
              stdout: Any = subprocess.PIPE, stderr: Any = subprocess.PIPE,
              ) -> subprocess.Popen[str]:
        """Start a CLI run in the background (pass files as stdout/stderr for long runs).

        It leads a new process group, so ``stop`` also ends the processes it started.
        """
        return subprocess.Popen(
            [sys.executable, "-m", "modelport", *(str(a) for a in args)],
            env=cli_env(home, **(env or {})), stdout=stdout, stderr=stderr, text=True,
            start_new_session=True,
        )

    @staticmethod
    def stop(proc: subprocess.Popen[str]) -> None:
        """Kill a run from ``start`` and its children, if it is still running."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def many(self, home: Path, commands: Sequence[Sequence[str | os.PathLike[str]]],
             env: dict[str, str] | None = None) -> list[Result]:
        """Independent CLI runs, concurrently; results in the order given."""
        with ThreadPoolExecutor(max_workers=max(1, min(len(commands), 6))) as pool:
            futures = [pool.submit(self.run, home, *cmd, env=env) for cmd in commands]
            return [f.result() for f in futures]


@pytest.fixture(scope="session")
def cli() -> Cli:
    """Runs the real CLI in a subprocess: ``cli.run(home, "models", "list")``."""
    return Cli()
