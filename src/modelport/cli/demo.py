"""``modelport demo``: the main job end to end on the embedded default.

Trains a small model on data that ships with scikit-learn, registers it, gates it, makes
it the champion, loads it back, scores a file through the real CLI, serves it, then
delivers two more versions through canary rollouts under live traffic: a good one that
is promoted and a bad one that the controller rolls back on its own. Then it watches:
drifted traffic and delayed labels, the server's alert firing, the monitoring report
and the dashboard; and the accuracy alert retrains the model on the labelled traffic
through a gate and a canary on its own.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from modelport.cli.demo_delivery import Traffic, deliver, run_cli, step
from modelport.cli.demo_watch import serve_config, watch
from modelport.cli.output import console
from modelport.cli.state import state


def demo(
    ctx: typer.Context,
    workdir: Annotated[Path | None, typer.Option(
        "--workdir", help="Where to write the demo's data files (default: a temp folder).")] = None,
    linger: Annotated[float, typer.Option(
        "--linger", min=0, help="Keep the server (and its dashboard) up this many seconds "
                                "at the end.")] = 0.0,
) -> None:
    """Train, register, gate, serve and roll out models on the embedded default registry."""
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    st = state(ctx)
    reg = st.registry()
    work = workdir or Path(tempfile.mkdtemp(prefix="modelport-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    console().print(escape(f"registry: {reg.settings.database_url}\n"
                            f"artifacts: {reg.artifacts.describe()}"))

    step(1, "train a model on iris (ships with scikit-learn)")
    iris = load_iris(as_frame=True)
    X = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    y = iris.target
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    accuracy = float(accuracy_score(y_test, model.predict(X_test)))
    console().print(f"LogisticRegression, test accuracy {accuracy:.3f}")

    step(2, "register it (skops format, signature, metrics, data fingerprint)")
    version = reg.log_model(
        model, "iris", input_example=X_train.head(5), metrics={"accuracy": accuracy},
        params={"max_iter": 500}, training_data=X_train, description="demo model",
    )
    console().print(f"registered [bold]{version.uri}[/] digest {version.artifact_digest}")

    home = ["--home", str(st.home)] if st.home else []
    eval_file = work / "iris_eval.csv"
    X_test.assign(species=y_test).to_csv(eval_file, index=False)
    step(3, "gate it on held-out data, then make it the champion")
    run_cli(*home, "gate", version.uri, "--data", str(eval_file), "--target", "species",
         "--rule", "accuracy >= 0.9", "--max-latency-ms", "50")
    event = reg.set_alias("iris", "champion", version.version, reason="demo: passed its gate")
    console().print(f"iris@champion → {event.to_version} (was {event.from_version or 'unset'})")

    step(4, "load it back by alias and check predictions")
    loaded = reg.load_model("models:/iris@champion")
    same = bool((loaded.predict(X_test) == model.predict(X_test)).all())
    console().print(f"{loaded!r}: predictions identical to the trained model: {same}")
    if not same:
        raise typer.Exit(1)

    step(5, "score a file with the CLI")
    data_file = work / "iris_test.csv"
    out_file = work / "iris_predictions.csv"
    X_test.to_csv(data_file, index=False)
    run_cli(*home, "models", "list")
    run_cli(*home, "models", "verify", "iris@champion")
    run_cli(*home, "predict", "models:/iris@champion", "--input", str(data_file),
         "--output", str(out_file))
    scored = pd.read_csv(out_file)
    scored_accuracy = float((scored["prediction"].to_numpy() == y_test.to_numpy()).mean())
    console().print(f"{len(scored)} predictions written to {escape(str(out_file))}; "
                    f"accuracy {scored_accuracy:.3f}")

    step(6, "serve it: OIP (Triton client), MLflow and /predict, then /metrics")
    with serving(home, serve_config(work / "serve.yaml")) as url:
        _query(url, X_test)
        # v1 and v2 answer every test row right: a wrong answer from them would be the
        # server's fault (v3, the broken one, is wrong by design).
        with Traffic(url, X_test.to_numpy().tolist(), y_test.tolist()) as traffic:
            deliver(reg, home, eval_file, X_train, y_train, traffic)
        watch(reg, home, url, X_test, y_test, work)
        if linger:
            console().print(f"the server stays up for {linger:g}s: {url}/dashboard")
            time.sleep(linger)
    console().rule("[bold green]demo finished")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(home: list[str], config: Path) -> Iterator[str]:
    """A real ``modelport serve --config CONFIG`` (its rollout controller and alert
    evaluator on) until the block ends; then SIGTERM, which must exit 0."""
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "modelport", *home, "serve", "--config", str(config),
            "--port", str(port), "--log-level", "warning"]
    console().print(f"[dim]$ modelport {escape(' '.join(args[3:]))}[/]")
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None:
                raise typer.Exit(1)
            time.sleep(0.2)
        console().print(f"server ready at {url}")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    console().print(f"server stopped cleanly on SIGTERM (exit code {code})")
    if code != 0:
        raise typer.Exit(1)


def _query(url: str, X_test: Any) -> None:
    import httpx
    import numpy as np

    rows = X_test.head(3)
    try:
        _triton(int(url.rsplit(":", 1)[1]), rows.to_numpy(dtype=np.float64))
    except ImportError:
        body = {"inputs": [{"name": "input-0", "shape": list(rows.shape),
                            "datatype": "FP64", "data": rows.to_numpy().ravel().tolist()}]}
        answer = httpx.post(f"{url}/v2/models/iris/infer", json=body, timeout=10)
        console().print(f"OIP JSON (install tritonclient[http] for the binary demo) → "
                        f"{escape(answer.text)}")
    payload = {"dataframe_split": {"columns": list(rows.columns),
                                   "data": rows.to_numpy().tolist()}}
    answer = httpx.post(f"{url}/invocations", json=payload, timeout=10)
    console().print(f"MLflow /invocations (dataframe_split) → {answer.status_code} "
                    f"{escape(answer.text)}")
    answer = httpx.post(f"{url}/predict", json={"features": rows.to_numpy().tolist()},
                        timeout=10)
    console().print(f"POST /predict → {answer.status_code} {escape(answer.text)} "
                    f"(answered by version {answer.headers.get('x-model-version')})")
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    shown = [line for line in metrics.splitlines()
             if line.startswith(("modelport_requests_total", "modelport_model_loaded"))]
    console().print("/metrics:\n  " + "\n  ".join(escape(line) for line in shown))


def _triton(port: int, rows: Any) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    inp = triton.InferInput("input-0", list(rows.shape), "FP64")
    inp.set_data_from_numpy(rows, binary_data=True)
    out = triton.InferRequestedOutput("output-0", binary_data=True)
    result = client.infer("iris", [inp], outputs=[out])
    console().print(f"Triton client (binary tensors) → predictions "
                    f"{result.as_numpy('output-0').tolist()}")
