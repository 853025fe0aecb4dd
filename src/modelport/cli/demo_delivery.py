"""The delivery half of ``modelport demo``: rollouts under live traffic.

A good v2 passes its gate and walks a canary to promoted; a deliberately bad v3 (it
answers one class for every flower) fails its gate, is rolled out anyway to show the
safety net, and is rolled back by the controller on its own. Traffic comes from a few
client threads so the analysis has live numbers to judge.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from modelport.cli.output import console
from modelport.client import Registry

CLIENTS = 4


def step(n: int, text: str) -> None:
    """A numbered section heading."""
    console().rule(f"[bold cyan]{n}. {text}")


def run_cli(*args: str, ok: tuple[int, ...] = (0,)) -> int:
    """Run ``modelport ARGS`` as a user would, echoing it; exit if its code is not ``ok``."""
    console().print(f"[dim]$ modelport {escape(' '.join(args))}[/]")
    code = subprocess.run([sys.executable, "-m", "modelport", *args], check=False).returncode
    if code not in ok:
        console().print(f"[red]modelport {escape(args[0])} exited with {code}[/]")
        raise typer.Exit(1)
    return code


class Traffic:
    """A few clients sending one row at a time to ``/predict`` until stopped, counting
    which version answered and every failure; given each row's true label, also the
    answers per version that differ from it."""

    def __init__(self, url: str, rows: list[list[float]],
                 labels: list[Any] | None = None) -> None:
        self.url = url
        self.rows = rows
        self.labels = labels
        self.answered: Counter[str] = Counter()
        self.wrong: Counter[str] = Counter()
        self.failed = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                         for i in range(CLIENTS)]

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the clients (once)."""
        for t in self._threads:
            if t.ident is None:
                t.start()

    def stop(self) -> None:
        """Stop the clients that were started."""
        self._stop.set()
        for t in self._threads:
            if t.ident is not None:
                t.join(10)

    def _client(self, i: int) -> None:
        import httpx

        with httpx.Client(timeout=10) as client:
            n = i
            while not self._stop.is_set():
                index = n % len(self.rows)
                row = self.rows[index]
                n += CLIENTS
                try:
                    r = client.post(f"{self.url}/predict", json={"features": [row]})
                except httpx.HTTPError:
                    self.failed += 1
                    continue
                if r.status_code == 200:
                    version = r.headers.get("x-model-version", "?")
                    self.answered[version] += 1
                    if self.labels is not None and \
                            r.json().get("predictions") != [self.labels[index]]:
                        self.wrong[version] += 1
                else:
                    self.failed += 1

    def summary(self) -> str:
        """Answers per version and failures so far (and wrong answers, if counted)."""
        per = ", ".join(f"v{v}: {n}" for v, n in sorted(self.answered.items()))
        text = f"answers by version: {per}; failed requests: {self.failed}"
        if self.labels is not None:
            wrong = ", ".join(f"v{v}: {self.wrong[v]}" for v in sorted(self.answered))
            text += f"; answers other than the true label: {wrong}"
        return text


def _wait_rollout(reg: Registry, rollout_id: int, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    with console().status("rollout in progress"):
        while time.monotonic() < deadline:
            r = reg.deployments.rollout(rollout_id)
            if not r.status.active:
                return r
            time.sleep(0.2)
    raise typer.Exit(1)


def _roll_out(reg: Registry, home: list[str], version: int, expected: str,
              traffic: Traffic) -> None:
    run_cli(*home, "rollout", "start", "iris", "--candidate", f"iris/{version}",
            "--strategy", "canary", "--steps", "20,50,100", "--step-duration", "2s",
            # Steps this short on a busy machine can see 20-30 answers: judge on more.
            "--min-requests", "50")
    active = reg.deployments.active_rollout("iris")
    final = active and _wait_rollout(reg, active.id)
    if final is None:
        final = reg.deployments.rollouts("iris")[0]
    console().print(f"rollout #{final.id} of iris/{version}: [bold]{final.status.value}[/] "
                    f"({escape(final.reason)})")
    console().print(traffic.summary())
    if final.status.value != expected:
        console().print(f"[red]expected {expected}[/]")
        # What decided it, so a surprise can be told from a flaky demo.
        for event in reg.deployments.events("iris", limit=3):
            console().print(escape(f"{event.kind}: {json.dumps(event.metrics)[:3000]}"))
        raise typer.Exit(1)


def deliver(reg: Registry, home: list[str], eval_file: Path, X_train: Any, y_train: Any,
            traffic: Traffic) -> None:
    """Steps 7-9: a good candidate promoted, a bad one rolled back, the history."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    step(7, "a better v2: gate against the champion, then a canary (20% → 50% → 100%)")
    good = reg.log_model(LogisticRegression(C=10.0, max_iter=1000).fit(X_train, y_train),
                         "iris", input_example=X_train.head(5), training_data=X_train,
                         description="demo: stronger fit")
    run_cli(*home, "gate", good.uri, "--data", str(eval_file), "--target", "species",
            "--rule", "accuracy >= champion - 0.02")
    _roll_out(reg, home, good.version, "promoted", traffic)
    console().print(f"iris@champion is now v{reg.get('iris@champion').version}")

    step(8, "a deliberately bad v3 (always answers 'setosa'): its gate fails...")
    bad = reg.log_model(DummyClassifier(strategy="constant", constant=0).fit(X_train, y_train),
                        "iris", input_example=X_train.head(5), description="demo: broken")
    code = run_cli(*home, "gate", bad.uri, "--data", str(eval_file), "--target", "species",
                   ok=(10,))
    console().print(f"gate exit code {code}: the CI pipeline would stop here "
                    "(`rollout start --require-gate` refuses it too)")
    console().print("...roll it out anyway, to watch the live analysis take it back out:")
    _roll_out(reg, home, bad.version, "rolled_back", traffic)
    console().print(f"iris@champion is still v{reg.get('iris@champion').version}")

    step(9, "every move, with who, why and the numbers that decided it")
    run_cli(*home, "rollout", "history", "iris")
    if traffic.failed:
        console().print(f"[red]{traffic.failed} requests failed during the rollouts[/]")
        raise typer.Exit(1)
