"""``modelport demo``: the main job end to end on the embedded default.

Trains a small model on data that ships with scikit-learn, registers it, makes it the
champion, loads it back, and scores a file through the real CLI. Later stages (gate,
rollout, serve, watch) extend this same walk-through.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelport.cli.output import console
from modelport.cli.state import state


def _step(n: int, text: str) -> None:
    console().rule(f"[bold cyan]{n}. {text}")


def _cli(*args: str) -> None:
    console().print(f"[dim]$ modelport {escape(' '.join(args))}[/]")
    subprocess.run([sys.executable, "-m", "modelport", *args], check=True)


def demo(
    ctx: typer.Context,
    workdir: Annotated[Path | None, typer.Option(
        "--workdir", help="Where to write the demo's data files (default: a temp folder).")] = None,
) -> None:
    """Train, register, alias, load and score a model on the embedded default registry."""
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

    _step(1, "train a model on iris (ships with scikit-learn)")
    iris = load_iris(as_frame=True)
    X = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    y = iris.target
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    accuracy = float(accuracy_score(y_test, model.predict(X_test)))
    console().print(f"LogisticRegression, test accuracy {accuracy:.3f}")

    _step(2, "register it (skops format, signature, metrics, data fingerprint)")
    version = reg.log_model(
        model, "iris", input_example=X_train.head(5), metrics={"accuracy": accuracy},
        params={"max_iter": 500}, training_data=X_train, description="demo model",
    )
    console().print(f"registered [bold]{version.uri}[/] digest {version.artifact_digest}")

    _step(3, "make it the champion")
    event = reg.set_alias("iris", "champion", version.version, reason="demo: first model")
    console().print(f"iris@champion → {event.to_version} (was {event.from_version or 'unset'})")

    _step(4, "load it back by alias and check predictions")
    loaded = reg.load_model("models:/iris@champion")
    same = bool((loaded.predict(X_test) == model.predict(X_test)).all())
    console().print(f"{loaded!r}: predictions identical to the trained model: {same}")
    if not same:
        raise typer.Exit(1)

    _step(5, "score a file with the CLI")
    data_file = work / "iris_test.csv"
    out_file = work / "iris_predictions.csv"
    X_test.to_csv(data_file, index=False)
    home = ["--home", str(st.home)] if st.home else []
    _cli(*home, "models", "list")
    _cli(*home, "models", "verify", "iris@champion")
    _cli(*home, "predict", "models:/iris@champion", "--input", str(data_file),
         "--output", str(out_file))
    scored = pd.read_csv(out_file)
    scored_accuracy = float((scored["prediction"].to_numpy() == y_test.to_numpy()).mean())
    console().print(f"{len(scored)} predictions written to {escape(str(out_file))}; "
                    f"accuracy {scored_accuracy:.3f}")
    _cli(*home, "models", "history", "iris")
    console().rule("[bold green]demo finished")
