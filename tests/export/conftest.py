"""Fixtures for the deployment targets: one source registry and fresh virtualenvs.

The source registry (made once per session) holds:

- ``iris`` 1-3: three different classifiers on a four-column table; ``champion`` is
  3 and the deployment ``flowers`` serves 2, which is signed (``public_key``);
- ``reg`` 1: a linear regression on a bare float array (a tensor signature);
- ``graph`` 1: an ONNX graph (skl2onnx's conversion of an iris classifier);
- ``centroid`` 1: a NearestCentroid, which skl2onnx cannot convert;
- ``pickled`` 1: a trusted pickle (loading it runs code);
- ``boost`` 1: a LightGBM classifier (converted by onnxmltools, float only).

Venvs are made with ``python -m venv`` and plain ``pip install`` (pip's cache keeps the
wheels between runs); each is made once per session, and how long it took is printed
in the test summary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelport.artifacts.signing import generate_key_pair
from modelport.client import Registry
from modelport.config import Settings
from tests.e2e.server import free_port

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
VENV_TIMEOUT = 900
_TIMINGS = pytest.StashKey[dict[str, float]]()


class Doubler:
    """A model no safe flavor stores (pickled when trusted)."""

    def predict(self, data: Any) -> Any:
        return np.asarray(data, dtype=float).sum(axis=1) * 2


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a venv's processes: nothing of this checkout or registry."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MODELPORT_") and k not in ("PYTHONPATH", "VIRTUAL_ENV",
                                                           "PYTHONHOME")}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The source registry and the in-memory models behind its versions."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neighbors import NearestCentroid
    from sklearn.tree import DecisionTreeClassifier

    home = tmp_path_factory.mktemp("source") / "home"
    settings = Settings.load(home, database_url=f"sqlite:///{home / 'registry.db'}",
                             artifacts=str(home / "artifacts"))
    iris = load_iris(as_frame=True)
    X = iris.data.set_axis(COLUMNS, axis=1).astype(np.float64)
    y = iris.target
    example = X.iloc[::25]  # six rows; the five stored with the version hold all species
    models = [LogisticRegression(C=0.05, max_iter=1000).fit(X, y),
              DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y),
              LogisticRegression(max_iter=1000).fit(X, y)]
    assert (models[0].predict(X) != models[1].predict(X)).any()
    rng = np.random.default_rng(11)
    A = rng.normal(size=(60, 3))
    lin = LinearRegression().fit(A, A @ np.array([1.5, -2.0, 0.25]) + 3.0)
    reg = Registry(settings=settings)
    try:
        for model in models:
            reg.log_model(model, "iris", input_example=example)
        reg.set_alias("iris", "champion", 3)
        reg.deployments.create("flowers", "iris", 2, "tester")
        private, public, _ = generate_key_pair(home.parent / "keys", "release")
        reg.sign("iris/2", private)
        reg.log_model(lin, "reg", input_example=A[:8])
        reg.log_model(_onnx_of(models[2]), "graph", input_example=example)
        reg.log_model(NearestCentroid().fit(X, y), "centroid", input_example=example)
        reg.log_model(Doubler(), "pickled", trusted=True)
        boost = _lightgbm(X, y)
        reg.log_model(boost, "boost", input_example=example)
        yield SimpleNamespace(registry=reg, home=home, X=X, models=models, example=example,
                              A=A, lin=lin, boost=boost, public_key=public)
    finally:
        reg.close()


def _lightgbm(X: pd.DataFrame, y: Any) -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(X, y)


def _onnx_of(model: Any) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    return convert_sklearn(model, initial_types=[("input", DoubleTensorType([None, 4]))],
                           options={id(model): {"zipmap": False}})


class Venvs:
    """Fresh virtualenvs, each made once: ``python -m venv`` then ``pip install``."""

    def __init__(self, root: Path, timings: dict[str, float]) -> None:
        self.root = root
        self.timings = timings

    def create(self, name: str, *installs: list[str]) -> Path:
        """A venv called ``name`` after each ``pip install ARGS`` in ``installs``; returns
        its python."""
        started = time.monotonic()
        folder = self.root / name
        self._run([sys.executable, "-m", "venv", str(folder)])
        python = folder / "bin" / "python"
        for args in installs:
            # --no-compile: byte-compiling pandas, scipy and pyarrow costs more than the
            # install itself, and nothing here imports them often enough to pay it back.
            self._run([str(python), "-m", "pip", "install", "--quiet", "--no-compile",
                       "--disable-pip-version-check", *args])
        self.timings[name] = time.monotonic() - started
        return python

    def _run(self, cmd: list[str]) -> None:
        proc = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True,
                              timeout=VENV_TIMEOUT, check=False)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} -> exit {proc.returncode}\n{proc.stdout[-3000:]}\n"
                        f"{proc.stderr[-3000:]}")


@pytest.fixture(scope="session")
def venvs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Venvs:
    """Makes the session's virtualenvs and records how long each took."""
    timings = request.config.stash.setdefault(_TIMINGS, {})
    return Venvs(tmp_path_factory.mktemp("venvs"), timings)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    timings = config.stash.get(_TIMINGS, {})
    if timings:
        terminalreporter.write_sep("-", "build targets: virtualenv set-up")
        for name, seconds in timings.items():
            terminalreporter.write_line(f"{name}: {seconds:.1f} s (python -m venv + pip "
                                        "install)")


class EntrypointProcess:
    """``python app/entrypoint.py serve`` of a build context, as the image runs it."""

    def __init__(self, python: Path, context: Path, state: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [str(python), str(context / "app" / "entrypoint.py"), "serve"]
        # As the Dockerfile's ENV says, except loopback and a free port for the test.
        settings = {"MODELPORT_HOME": str(context / "app" / "home"),
                    "MODELPORT_STATE_DIR": str(state), "MODELPORT_USER": "modelport",
                    "MODELPORT_SERVE_HOST": "127.0.0.1", "MODELPORT_SERVE_PORT": str(self.port),
                    # As a user behind a gateway would; a no-op where serve has no auth.
                    "MODELPORT_INSECURE_NO_AUTH": "1"}
        self.env = clean_env(**{**settings, **env})
        self.log_path = state.parent / f"entrypoint-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EntrypointProcess:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"entrypoint exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise AssertionError(f"not ready after 120 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def frame(rows: np.ndarray) -> pd.DataFrame:
    """Rows as the iris table."""
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.fixture(scope="session")
def docker_context(source: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``build docker flowers``: the context of the endpoint's stable version (iris/2)."""
    from modelport.export.docker import build_docker

    out = tmp_path_factory.mktemp("docker") / "ctx"
    build_docker(source.registry, "flowers", out)
    return out


@pytest.fixture(scope="session")
def docker_python(docker_context: Path, venvs: Venvs) -> Path:
    """A fresh venv installed as the Dockerfile's final stage installs: the locked
    requirements, then modelport's own wheel from the context without dependencies,
    then ``pip check``."""
    wheel = next((docker_context / "wheels").glob("modelport-*.whl"))
    python = venvs.create("docker", ["--requirement", str(docker_context / "requirements.txt")],
                          ["--no-deps", str(wheel)])
    check = subprocess.run([str(python), "-m", "pip", "check"], env=clean_env(),
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    return python
