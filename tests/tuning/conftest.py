"""Fixtures for tuning tests: a project folder to tune, and a runner on a fresh registry."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelport.client import Registry
from modelport.pipelines.loader import load_pipeline
from modelport.tuning.runner import TuneOptions, TuneOutcome, Tuner
from tests.tuning.assets import write_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder; ``python`` on PATH is this interpreter."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def module_name() -> str:
    """A module name no earlier test imported (``sys.modules`` outlives a test)."""
    return f"tuned_{uuid.uuid4().hex[:10]}"


TuneFn = Callable[..., TuneOutcome]


@pytest.fixture
def tune(project: Path, sqlite_registry: Registry) -> TuneFn:
    """``tune(yaml_text, module=None, options=None, **module_settings)``: write the
    project, then run its tune block to the end on the test's registry."""

    def run(yaml_text: str, module: str | None = None, options: TuneOptions | None = None,
            **settings: Any) -> TuneOutcome:
        path = write_project(project, yaml_text, module, **settings)
        return Tuner(load_pipeline(path), sqlite_registry, options).run()

    return run
