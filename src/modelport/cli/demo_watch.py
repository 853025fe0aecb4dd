"""The watching half of ``modelport demo``: drift, labels, an alert, the report, the dashboard.

After the rollouts, clients send flowers whose petal length is shifted far beyond what
the model was trained on, and their true species arrive later as feedback. The server's
own alert evaluator (rules in the demo's serve.yaml) sees the drift and fires; the
report shows drift per feature and realized accuracy; the dashboard shows all of it.
The accuracy alert then retrains iris on those labelled rows (``demo_retrain``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from modelport.cli.demo_delivery import run_cli, step
from modelport.cli.demo_retrain import RULE as RETRAIN_RULE
from modelport.cli.demo_retrain import follow, write_pipeline
from modelport.cli.output import console
from modelport.client import Registry

DRIFTED = "petal_length"
SHIFT_CM = 3.0
REQUESTS, ROWS = 60, 100  # drifted rows: 6,000, about half the stable window
ALERT_RULE = "petal-length-drift"


def serve_config(path: Path) -> Path:
    """The demo's serve.yaml: iris@champion, its drift and accuracy alerts (the latter
    retrains, with the pipeline written beside it), a fast evaluator."""
    import yaml

    write_pipeline(path.parent)
    path.write_text(yaml.safe_dump({
        "models": [{"uri": "models:/iris@champion", "alerts": [
            {"name": ALERT_RULE, "expr": f"psi({DRIFTED}) > 0.2 over 1h",
             "severity": "warning",
             "description": "petal length no longer looks like the training data"},
            {"name": RETRAIN_RULE, "expr": "accuracy < 0.8 over 1h",
             "severity": "critical", "on_alert": "run pipeline retrain"},
        ]}],
        "alerting": {"interval": 2},
        "dashboard": {"refresh_seconds": 1},
    }, sort_keys=False))
    return path


def watch(reg: Registry, home: list[str], url: str, X_test: Any, y_test: Any,
          work: Path) -> None:
    """Steps 10-14: drifted traffic and its labels, the alert, the report, the dashboard,
    and the retraining the accuracy alert triggers."""
    import httpx

    step(10, f"watch: traffic with {DRIFTED} shifted by +{SHIFT_CM:g} cm, labels later")
    shifted = X_test.assign(**{DRIFTED: X_test[DRIFTED] + SHIFT_CM})
    rows, truth = shifted.to_numpy().tolist(), y_test.to_numpy().tolist()
    labels, right = [], 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for r in range(REQUESTS):
            picked = [(r * ROWS + i) % len(rows) for i in range(ROWS)]
            answer = client.post("/predict", json={"features": [rows[i] for i in picked]})
            if answer.status_code != 200:
                console().print(f"[red]/predict answered {answer.status_code}[/]")
                raise typer.Exit(1)
            rid = answer.headers["x-request-id"]
            for row, (i, pred) in enumerate(zip(picked, answer.json()["predictions"],
                                                strict=True)):
                labels.append({"id": rid, "row": row, "label": truth[i]})
                right += int(pred == truth[i])
        for start in range(0, len(labels), 1000):
            fed = client.post("/v2/models/iris/feedback", json=labels[start:start + 1000])
            if fed.status_code != 200:
                console().print(f"[red]feedback answered {fed.status_code}: "
                                f"{escape(fed.text)}[/]")
                raise typer.Exit(1)
    console().print(f"{REQUESTS * ROWS:,} drifted rows scored; {len(labels):,} labels posted "
                    f"(accuracy on them: {right / len(labels):.3f})")

    step(11, "the server's alert evaluator fires on the drift")
    alert = _wait_alert(reg)
    console().print(f"[bold red]{alert.state}[/]: {escape(alert.message)}")
    run_cli(*home, "monitor", "alerts", "iris")

    step(12, "the monitoring report: traffic, realized accuracy, drift per feature")
    report = work / "iris_report.html"
    run_cli(*home, "monitor", "report", "iris", "--window", "1h", "--html", str(report))

    step(13, "the dashboard")
    overview = httpx.get(f"{url}/dashboard/api/overview", timeout=30).json()
    iris = next(e for e in overview["endpoints"] if e["name"] == "iris")
    firing = [a["rule"] for a in iris["alerts"] if a["state"] == "firing"]
    console().print(f"open [bold]{url}/dashboard[/] while the server runs: it shows "
                    f"{sum(t['requests'] for t in iris['traffic']):,} requests across "
                    f"versions {', '.join('v' + str(t['version']) for t in iris['traffic'])}"
                    f", firing alerts: {', '.join(firing) or 'none'}")

    follow(reg, home, url, rows)


def _wait_alert(reg: Registry, timeout: float = 90.0) -> Any:
    """The drift alert once the server's evaluator has fired it."""
    deadline = time.monotonic() + timeout
    with console().status("waiting for the prediction log to flush and the rule to fire"):
        while time.monotonic() < deadline:
            for alert in reg.alerts.list("iris", state="firing"):
                if alert.rule == ALERT_RULE:
                    return alert
            time.sleep(0.5)
    console().print(f"[red]the {ALERT_RULE} alert did not fire within {timeout:g}s[/]")
    raise typer.Exit(1)


__all__ = ["serve_config", "watch"]
