"""A small project to tune: a train command and a train function on generated data."""

from __future__ import annotations

import textwrap
from pathlib import Path

import modelport

# For child processes that run elsewhere than the checkout: the modelport under test.
SRC = str(Path(modelport.__file__).resolve().parents[1])

# A user's train command: parameters from the environment, the model and metrics.json
# into the trial's own folder, exit 1 for C above $FAIL_ABOVE (a "diverged" run), and
# an accuracy line per "epoch" for the pruner when $REPORTS is set.
TRAIN = """\
import json, os, sys, time

C = float(os.environ["MODELPORT_PARAM_C"])
intercept = os.environ.get("MODELPORT_PARAM_fit_intercept", "true") == "true"
if C > float(os.environ.get("FAIL_ABOVE", "inf")):
    print("diverged: C is too large for this data", file=sys.stderr)
    sys.exit(1)

import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
X = rng.normal(size=(200, 4))
y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=200) > 0.3).astype(int)
model = LogisticRegression(C=C, fit_intercept=intercept, max_iter=300).fit(X[:150], y[:150])
accuracy = float(model.score(X[150:], y[150:]))
for epoch in range(int(os.environ.get("REPORTS", "0"))):
    print(f"modelport:report {epoch} {accuracy * (epoch + 1) / 3!r}", flush=True)
    time.sleep(0.05)
out = os.environ["MODELPORT_TRIAL_DIR"]
sio.dump(model, os.path.join(out, "model.skops"))
json.dump({"accuracy": accuracy, "C": C}, open(os.path.join(out, "metrics.json"), "w"))
print("trained", accuracy, flush=True)
time.sleep(float(os.environ.get("TRIAL_SLEEP", "0")))
"""

# A quick stand-in for training, for tests about the command plumbing (failures,
# pruning, kills, parallel processes) rather than the model: no heavy imports, a
# made-up accuracy curve peaking at C=1, and as its model a real LogisticRegression
# trained once by the test (base.skops).
QUICK = """\
import json, math, os, shutil, sys, time

C = float(os.environ["MODELPORT_PARAM_C"])
intercept = os.environ.get("MODELPORT_PARAM_fit_intercept", "true") == "true"
if C > float(os.environ.get("FAIL_ABOVE", "inf")):
    print("diverged: C is too large for this data", file=sys.stderr)
    sys.exit(1)
accuracy = round(0.9 - 0.05 * abs(math.log10(C)) - (0.0 if intercept else 0.03), 6)
reports = int(os.environ.get("REPORTS", "0"))
for epoch in range(reports):
    print(f"modelport:report {epoch} {accuracy * (epoch + 1) / reports!r}", flush=True)
    time.sleep(0.02)
out = os.environ["MODELPORT_TRIAL_DIR"]
shutil.copy("base.skops", os.path.join(out, "model.skops"))
json.dump({"accuracy": accuracy, "C": C}, open(os.path.join(out, "metrics.json"), "w"))
print("trained", accuracy, flush=True)
time.sleep(float(os.environ.get("TRIAL_SLEEP", "0")))
"""

# The same as a function trial: fn(params, trial) -> (model, metrics).
FUNCTION = """\
import numpy as np
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
X = rng.normal(size=(200, 4))
y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=200) > 0.3).astype(int)
CALLS = []


def fit(params, trial):
    CALLS.append(dict(params))
    if params["C"] > FAIL_ABOVE:
        raise RuntimeError("diverged")
    model = LogisticRegression(C=params["C"], fit_intercept=params["fit_intercept"],
                               max_iter=300).fit(X[:150], y[:150])
    accuracy = float(model.score(X[150:], y[150:]))
    for step in range(REPORTS):
        # a slow learner for small C: what the pruner should stop
        trial.report(step, accuracy * (step + 1) / REPORTS if params["C"] < 0.05 else accuracy)
    return model, {"accuracy": accuracy}


FAIL_ABOVE = float("inf")
REPORTS = 0
"""

SPACE = """\
    space:
      C: {type: float, low: 0.001, high: 10, log: true}
      fit_intercept: {type: categorical, choices: [true, false]}
"""


def command_yaml(trials: int = 6, seed: int = 7, extra: str = "",
                 script: str = "quick.py") -> str:
    """A pipeline file whose tune block runs ``python SCRIPT`` (``train.py`` trains for
    real; ``quick.py`` stands in)."""
    return (f"name: clf\ntune:\n  model: clf\n  command: python {script}\n"
            f"  file: ${{trial.dir}}/model.skops\n  metrics_file: ${{trial.dir}}/metrics.json\n"
            f"  objective: {{metric: accuracy, direction: maximize}}\n"
            f"  trials: {trials}\n  sampler: {{type: random, seed: {seed}}}\n"
            + textwrap.indent(textwrap.dedent(SPACE), "  ") + extra)


def function_yaml(module: str, trials: int = 6, seed: int = 7, extra: str = "") -> str:
    """A pipeline file whose tune block calls ``MODULE:fit``."""
    return (f"name: clf\ntune:\n  model: clf\n  function: {module}:fit\n"
            f"  objective: {{metric: accuracy, direction: maximize}}\n"
            f"  trials: {trials}\n  sampler: {{type: random, seed: {seed}}}\n"
            + textwrap.indent(textwrap.dedent(SPACE), "  ") + extra)


def write_project(folder: Path, yaml_text: str, module: str | None = None,
                  **settings: object) -> Path:
    """``train.py`` (or a function module) and ``modelport.yaml`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(TRAIN)
    (folder / "quick.py").write_text(QUICK)
    if not (folder / "base.skops").exists():
        _base_model(folder / "base.skops")
    if module is not None:
        body = FUNCTION + "".join(f"{k} = {v!r}\n" for k, v in settings.items())
        (folder / f"{module}.py").write_text(body)
    path = folder / "modelport.yaml"
    path.write_text(yaml_text)
    return path


def _base_model(path: Path) -> None:
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    sio.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), str(path))
