"""``modelport init``: a starter ``modelport.yaml`` and a CI workflow that runs it on push.

Files are checked before any is written, so a refusal (an existing workflow without
``force``) leaves the folder as it was; each file is written whole or not at all.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modelport.errors import ConflictError, InvalidInputError
from modelport.pipelines.loader import DEFAULT_FILE

CI_FILES = {"github": Path(".github/workflows/modelport.yml"), "gitlab": Path(".gitlab-ci.yml")}

PIPELINE = """\
# A modelport pipeline: `modelport pipeline run` runs these steps in order, in this
# folder, and stops at the first failure. Every run is recorded in the registry
# (`modelport pipeline runs`). Reference: docs/delivery.md, section "Pipelines".
name: {name}
steps:
  # Any command, run without a shell (add `shell: true` for pipes and globs).
  # This one is expected to write model.skops and eval.csv (with a `target` column).
  - train: python train.py
    timeout: 30m
  # Registers model.skops as the next version of {name}; later steps use it.
  - register:
      name: {name}
      file: model.skops
      # metrics_file: metrics.json   # {{"accuracy": 0.97}}: metrics logged with the version
  # Recomputes metrics on eval.csv and compares them with the current champion.
  - gate:
      data: eval.csv
      target: target
      rules: ["accuracy >= 0.8"]
      max_latency_ms: 50
      junit: gate-report.xml
  # Then roll it out to a live endpoint (needs `modelport serve` on the same registry):
  # - rollout:
  #     endpoint: {name}
  #     strategy: canary
  #     steps: [5, 25, 50, 100]
  #     step_duration: 60s
  #     wait: true
  #   timeout: 30m
"""

_REGISTRY_NOTE = """\
# Without settings the registry is a throwaway one under ~/.modelport: the run proves the
# model trains, registers and passes its gate. To deliver from CI, point
# MODELPORT_DATABASE_URL at your team's registry (install modelport[postgres] for
# PostgreSQL) and MODELPORT_ARTIFACTS at a folder your servers share."""

GITHUB = f"""\
# Written by `modelport init --ci github`: runs the pipeline in modelport.yaml on push.
{_REGISTRY_NOTE}
name: modelport
on:
  push:
  workflow_dispatch:
jobs:
  pipeline:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    env:
      MODELPORT_DATABASE_URL: ${{{{ secrets.MODELPORT_DATABASE_URL }}}}
      MODELPORT_ARTIFACTS: ${{{{ secrets.MODELPORT_ARTIFACTS }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install modelport
        # Pin the version you tested with (e.g. modelport==0.1.0) so a release never
        # changes your pipeline under you.
        run: pip install modelport
      - name: Install the project's requirements
        run: if [ -f requirements.txt ]; then pip install -r requirements.txt; fi
      - name: Run the pipeline
        run: modelport pipeline run --file {DEFAULT_FILE}
      - name: Keep the gate report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: gate-report
          path: gate-report.xml
          if-no-files-found: ignore
"""

GITLAB = f"""\
# Written by `modelport init --ci gitlab`: runs the pipeline in modelport.yaml on push.
{_REGISTRY_NOTE}
# Set them as CI/CD variables; GitLab passes those to the job's environment.
modelport-pipeline:
  image: python:3.12
  rules:
    - if: $CI_PIPELINE_SOURCE == "push"
  before_script:
    # Pin the version you tested with (e.g. modelport==0.1.0) so a release never
    # changes your pipeline under you.
    - pip install modelport
    - if [ -f requirements.txt ]; then pip install -r requirements.txt; fi
  script:
    - modelport pipeline run --file {DEFAULT_FILE}
  artifacts:
    when: always
    reports:
      junit: gate-report.xml
"""

_TEMPLATES = {"github": GITHUB, "gitlab": GITLAB}


@dataclass(frozen=True)
class Written:
    """One file ``init`` considered: where, and whether it was written or kept."""

    path: Path
    action: str  # "written", "overwritten" or "kept"


def pipeline_name(folder: Path) -> str:
    """A valid pipeline (and model) name from a folder's name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.resolve().name).strip("-._")[:64]
    return name or "model"


def init_project(folder: Path, ci: str | None, *, force: bool = False) -> list[Written]:
    """Write the starter pipeline (if missing) and the CI workflow for ``ci``.

    An existing ``modelport.yaml`` is kept when a workflow is asked for; any other
    existing file is a ``ConflictError`` unless ``force``.
    """
    if ci is not None and ci not in CI_FILES:
        raise InvalidInputError(f"unknown CI system {ci!r}: use {' or '.join(CI_FILES)}")
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is not a folder")
    plan: list[tuple[Path, str]] = [(folder / DEFAULT_FILE,
                                     PIPELINE.format(name=pipeline_name(folder)))]
    if ci is not None:
        plan.append((folder / CI_FILES[ci], _TEMPLATES[ci]))
    conflicts = [p for p, _ in plan if p.exists()
                 and not force and not (ci is not None and p.name == DEFAULT_FILE)]
    if conflicts:
        raise ConflictError(f"{', '.join(str(p) for p in conflicts)} already exists: "
                            "use --force to overwrite")
    done = []
    for path, text in plan:
        if path.exists() and not force:
            done.append(Written(path, "kept"))
            continue
        existed = path.exists()
        _write(path, text)
        done.append(Written(path, "overwritten" if existed else "written"))
    return done


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 is wrong for a file meant to be committed
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["CI_FILES", "Written", "init_project", "pipeline_name"]
