"""Fixtures for pipeline tests: a project folder with a small train script, a pipeline
file writer, and a stand-in for the modelport CLI's gate/rollout commands."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TRAIN = """\
import json, sys
import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
y = (X[:, 0] > 0).astype(int)
model = LogisticRegression().fit(X, y)
sio.dump(model, "model.skops")
json.dump({"accuracy": float(model.score(X, y))}, open("metrics.json", "w"))
print("trained", model.score(X, y))
"""

# Stands in for `python -m modelport gate|rollout ...` until those commands exist on
# this branch: records its argv, exits with FAKE_EXIT, and for `rollout start` writes
# the rollout to the real registry as the real command would. Everything else is
# handed to the real interpreter.
FAKE = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
if args[:2] == ["-m", "modelport"] and args[2:3] in (["gate"], ["rollout"]):
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps(args[2:]) + "\\n")
    print("fake", args[2], "output line")
    code = int(os.environ.get("FAKE_EXIT", "0"))
    if code:
        print("error: fake failure", file=sys.stderr)
    elif args[2:4] == ["rollout", "start"]:
        from modelport.client import Registry
        from modelport.registry.entities import Mode
        from modelport.uri import parse_uri
        uri = parse_uri(args[args.index("--candidate") + 1])
        with Registry() as reg:
            reg.deployments.start_rollout(args[4], model_name=uri.name, candidate=uri.version,
                                          strategy="canary", steps=[50, 100], actor="fake",
                                          mode=Mode.CANARY)
    sys.exit(code)
os.execv({python!r}, [{python!r}, *args])
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (outside any git repo) with ``train.py``; ``python`` on PATH is
    this interpreter, as in an activated virtualenv."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    return folder


@pytest.fixture
def write_pipeline(project: Path) -> Callable[[str], Path]:
    """Write ``modelport.yaml`` (dedented) into the project; returns its path."""

    def write(text: str) -> Path:
        path = project / "modelport.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


class FakeCli:
    """The stand-in interpreter and what it was asked to run."""

    def __init__(self, folder: Path) -> None:
        self.python = str(folder / "fake-python")
        self.log = folder / "fake-calls.jsonl"
        Path(self.python).write_text(FAKE.format(python=sys.executable))
        os.chmod(self.python, stat.S_IRWXU)

    def calls(self) -> list[list[str]]:
        """Each gate/rollout argv (after ``-m modelport``), in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCli:
    """A fake ``python`` for the runner whose gate/rollout commands are recorded."""
    fake = FakeCli(tmp_path)
    monkeypatch.setenv("FAKE_LOG", str(fake.log))
    return fake


def steps_by_name(run: Any) -> dict[str, dict[str, Any]]:
    """A run record's steps keyed by name."""
    return {s["name"]: s for s in run.steps}
