"""The closing loop of ``modelport demo``: the server retrains iris on its own.

The demo's serve.yaml gives the ``accuracy-low`` alert ``on_alert: run pipeline
retrain``; this module writes that pipeline (``modelport.yaml``, beside serve.yaml) and
its train script into the demo's folder, then follows what the server does when the
alert fires: the labelled drifted rows are exported, the pipeline trains on them,
registers, gates against the champion and walks a canary to promoted, step by step.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.markup import escape

from modelport.cli.demo_delivery import Traffic, run_cli, step
from modelport.cli.output import console
from modelport.client import Registry
from modelport.errors import NotFoundError
from modelport.registry.retrains import Retrain

RULE = "accuracy-low"
TIMEOUT = 240.0

TRAIN = '''\
"""Written by `modelport demo`: retrain iris on the labelled production rows."""
import os

import pandas as pd
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

data = pd.read_parquet(os.environ["MODELPORT_RETRAIN_DATA"])
target = os.environ["MODELPORT_RETRAIN_TARGET"]
X, y = data.drop(columns=[target]), data[target]
X_fit, X_eval, y_fit, y_eval = train_test_split(X, y, test_size=0.3, random_state=0)
skops.io.dump(LogisticRegression(max_iter=1000).fit(X_fit, y_fit), "model.skops")
X_fit.head(5).to_csv("example.csv", index=False)
X_fit.to_parquet("train.parquet", index=False)  # linked and profiled for drift
X_eval.assign(**{target: y_eval}).to_csv("eval.csv", index=False)
print(f"fitted on {len(X_fit):,} labelled rows, {len(X_eval):,} held out for the gate")
'''


def write_pipeline(folder: Path) -> Path:
    """``modelport.yaml`` (the pipeline ``retrain``) and ``retrain.py`` in ``folder``."""
    (folder / "retrain.py").write_text(TRAIN)
    path = folder / "modelport.yaml"
    path.write_text(f"""\
# Written by `modelport demo`. The server runs it when the accuracy-low alert fires,
# with MODELPORT_RETRAIN_DATA naming the labelled rows it logged.
name: retrain
steps:
  - train: [{json.dumps(sys.executable)}, retrain.py]
  - register: {{name: iris, file: model.skops, input_example: example.csv,
                training_data: train.parquet,
                description: "retrained on labelled production traffic"}}
  - gate: {{data: eval.csv, target: label, rules: ["accuracy >= champion"]}}
  # A model retrained on drifted traffic answers it differently from stable by design:
  # allow a larger output shift than the default 0.25, judge the rest as usual.
  - rollout: {{endpoint: iris, strategy: canary, steps: [20, 50, 100], step_duration: 2s,
               min_requests: 50, max_shift: 0.6, wait: true}}
    timeout: 3m
""")
    return path


def follow(reg: Registry, home: list[str], url: str, rows: list[list[float]]) -> None:
    """Step 14: the retraining the alert triggered, from export to promoted."""
    step(14, "the accuracy alert retrains iris: labelled rows → train → register → gate "
             "→ canary → promoted")
    deadline = time.monotonic() + TIMEOUT
    trigger = _wait(reg, deadline, lambda e: True)
    if trigger.status == "skipped":
        _fail(f"the retraining was skipped: {trigger.reason}")
    console().print(f"alert {RULE} fired → trigger #{trigger.id}: "
                    f"{trigger.details.get('rows', 0):,} labelled rows exported to "
                    f"{escape(str(trigger.details.get('data')))}; pipeline "
                    f"{trigger.pipeline}, run {trigger.details.get('run_id')}")
    # The canary is judged on live answers: drifted clients come once it starts (not
    # before: on a small machine they would slow the training down).
    traffic = Traffic(url, rows)
    try:
        _steps(reg, str(trigger.details["run_id"]), deadline, traffic)
        done = _wait(reg, deadline, lambda e: e.id == trigger.id and e.status != "running")
    finally:
        traffic.stop()
    console().print(traffic.summary())
    if traffic.failed:
        _fail(f"{traffic.failed} requests failed during the retrained model's canary")
    colour = "green" if done.status == "succeeded" else "red"
    console().print(f"retrain #{done.id} [bold {colour}]{done.status}[/]: "
                    f"{escape(done.reason)}")
    if done.status != "succeeded" or done.details.get("rollout_status") != "promoted":
        raise typer.Exit(1)
    run_cli(*home, "monitor", "retrains", "iris")
    console().print(f"iris@champion is now v{reg.get('iris@champion').version}, retrained "
                    "on what production saw")


def _wait(reg: Registry, deadline: float, ok: Any) -> Retrain:
    with console().status("waiting for the server's retraining"):
        while time.monotonic() < deadline:
            found = [e for e in reg.retrains.history("iris", limit=5) if ok(e)]
            if found:
                return found[0]
            time.sleep(0.3)
    _fail(f"no retraining of iris recorded within {TIMEOUT:g}s")


def _steps(reg: Registry, run_id: str, deadline: float, traffic: Traffic) -> None:
    """Print each pipeline step as it ends, and the canary's moves while it runs (with
    ``traffic`` started for it)."""
    shown: set[str] = set()
    weights: list[float] = []
    while time.monotonic() < deadline:
        try:
            run = reg.records.pipeline_run(run_id)
        except NotFoundError:  # the runner has not recorded it yet
            time.sleep(0.3)
            continue
        for s in run.steps:
            if s["status"] in ("pending", "running") or s["name"] in shown:
                if s["kind"] == "rollout" and s["status"] == "running":
                    if not weights:
                        traffic.start()
                    _canary(reg, weights)
                continue
            shown.add(s["name"])
            mark = "[green]✓[/]" if s["status"] == "succeeded" else "[red]✗[/]"
            took = f" in {s['seconds']:.1f} s" if s.get("seconds") is not None else ""
            note = f": {escape(s['message'])}" if s.get("message") else ""
            console().print(f"{mark} {s['name']} ({s['kind']}) {s['status']}{took}{note}")
        if run.status != "running":
            return
        time.sleep(0.3)


def _canary(reg: Registry, weights: list[float]) -> None:
    if not weights:
        weights.append(-1.0)  # the traffic is on; no weight shown yet
    rollout = reg.deployments.active_rollout("iris")
    if rollout is not None and weights[-1] != rollout.weight:
        weights.append(rollout.weight)
        console().print(f"  canary: iris/{rollout.candidate} gets {rollout.weight:g}% of the "
                        "traffic")


def _fail(message: str) -> NoReturn:
    console().print(f"[red]{escape(message)}[/]")
    raise typer.Exit(1)


__all__ = ["RULE", "follow", "write_pipeline"]
