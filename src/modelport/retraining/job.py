"""One triggered retraining: export the labelled rows, run the pipeline, record the end.

Runs on its own thread while the trigger's lease (``retrain:ENDPOINT``) is renewed
beside it, so the alert evaluator never waits and no second run of the endpoint starts.
The pipeline is ``modelport pipeline run`` in a child process, exactly as a person
would run it (recorded as a PipelineRun, under a run id chosen here so the trigger can
name it up front), with the variables below on top of the server's environment:

=============================  =========================================================
``MODELPORT_RETRAIN_DATA``     Parquet file: one column per feature, labels in ``label``
``MODELPORT_RETRAIN_TARGET``   the label column's name (``label``)
``MODELPORT_RETRAIN_ROWS``     how many rows the file has
``MODELPORT_RETRAIN_DIR``      this trigger's folder (the file, the run's log)
``MODELPORT_RETRAIN_ENDPOINT`` the endpoint retrained
``MODELPORT_RETRAIN_MODEL``    the model it serves (the name to register under)
``MODELPORT_RETRAIN_ALERT``    the rule that fired
``MODELPORT_RETRAIN_TRIGGER``  the trigger's id (its audit record's number)
=============================  =========================================================

Steps run as ``modelport-retrain`` (``MODELPORT_USER``), so the versions, gates and
rollouts they record say who made them. A run that fails (or is cancelled when the
server stops) leaves the endpoint as it was: a rollout of the new version it started
and left running is aborted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import ModelportError
from modelport.monitoring.rules import Rule
from modelport.monitoring.trainset import TARGET, export_training_set
from modelport.registry.alerts import Alert
from modelport.registry.retrains import ACTOR, Retrain

log = logging.getLogger("modelport.retraining")
DATA_FILE, LOG_FILE, RUN_FILE = "data.parquet", "pipeline.log", "run.json"
STOP_GRACE = 30.0  # seconds a cancelled pipeline gets to record itself before SIGKILL
CANCELLED_EXIT = 130


@dataclass(frozen=True)
class JobSpec:
    """Everything one triggered run needs, decided by the trigger."""

    rule: Rule
    alert: Alert
    lease: str
    holder: str
    folder: Path
    python: str
    lease_ttl: float


class RetrainJob:
    """Export, run, record: ``run`` on a thread; ``cancel`` stops the pipeline."""

    def __init__(self, settings: Settings, root: Path, spec: JobSpec) -> None:
        self.settings, self.root, self.spec = settings, root, spec
        self.cancelled = threading.Event()
        self.trigger: Retrain | None = None
        self._done = threading.Event()

    def cancel(self) -> None:
        """Stop the pipeline (SIGTERM: the run records itself as cancelled)."""
        self.cancelled.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; whether it did."""
        return self._done.wait(timeout)

    def run(self) -> None:
        """The whole job; every way it ends is recorded, and the lease given back."""
        registry = Registry(settings=self.settings)
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(registry, stop), daemon=True,
                                   name=f"retrain-lease:{self.spec.rule.endpoint}")
        renewer.start()
        try:
            self._run(registry)
        except Exception as exc:  # the record must say it ended, whatever happened
            log.exception("retraining of %s failed", self.spec.rule.endpoint)
            with contextlib.suppress(ModelportError):
                self._fail_or_skip(registry, f"internal error: {exc}", {})
        finally:
            stop.set()
            renewer.join(5)
            with contextlib.suppress(ModelportError):
                registry.records.release_lease(self.spec.lease, self.spec.holder)
            registry.close()
            self._done.set()

    def _renew(self, registry: Registry, stop: threading.Event) -> None:
        while not stop.wait(self.spec.lease_ttl / 3):
            try:
                if not registry.records.acquire_lease(self.spec.lease, self.spec.holder,
                                                      self.spec.lease_ttl):
                    log.warning("retraining of %s lost its lease", self.spec.rule.endpoint)
            except ModelportError as exc:
                log.warning("retraining lease of %s not renewed: %s",
                            self.spec.rule.endpoint, exc)

    def _run(self, registry: Registry) -> None:
        rule, alert, folder = self.spec.rule, self.spec.alert, self.spec.folder
        on = rule.on_alert
        assert on is not None
        folder.mkdir(parents=True, exist_ok=True)
        try:
            data = export_training_set(self.root, rule.endpoint, on.window, folder / DATA_FILE)
        except ModelportError as exc:
            self._skip(registry, f"the labelled rows could not be exported: {exc}")
            return
        if data.rows == 0:
            self._skip(registry, f"no labelled rows in the last {_span(on.window)} to "
                                 "train on")
            shutil.rmtree(folder, ignore_errors=True)
            return
        run_id = _uuid()
        model = _model_of(registry, rule.endpoint)
        self.trigger = registry.retrains.record_trigger(
            rule.endpoint, rule=rule.name, alert_id=alert.id, pipeline=on.pipeline,
            reason=f"alert {rule.name} firing: {alert.message}",
            details={"run_id": run_id, "rows": data.rows, "features": data.features,
                     "window_seconds": on.window.total_seconds(),
                     "since": data.since.isoformat(), "until": data.until.isoformat(),
                     "data": str(data.path), "pipeline_file": str(on.pipeline_file),
                     "log": str(folder / LOG_FILE), "model": model})
        log.info("retraining %s: trigger #%d, %d labelled rows, pipeline %s (run %s, log %s)",
                 rule.endpoint, self.trigger.id, data.rows, on.pipeline, run_id,
                 folder / LOG_FILE)
        env = self._env(model, data.path, data.rows)
        code = self._pipeline(run_id, env)
        self._record(registry, code, run_id)

    def _env(self, model: str, data: Path, rows: int) -> dict[str, str]:
        rule, s = self.spec.rule, self.settings
        assert self.trigger is not None
        return {**os.environ, "PYTHONUNBUFFERED": "1", "MODELPORT_HOME": str(s.home),
                "MODELPORT_DATABASE_URL": s.database_url, "MODELPORT_ARTIFACTS": s.artifacts,
                "MODELPORT_USER": ACTOR,
                "MODELPORT_RETRAIN_DATA": str(data), "MODELPORT_RETRAIN_TARGET": TARGET,
                "MODELPORT_RETRAIN_ROWS": str(rows),
                "MODELPORT_RETRAIN_DIR": str(self.spec.folder),
                "MODELPORT_RETRAIN_ENDPOINT": rule.endpoint, "MODELPORT_RETRAIN_MODEL": model,
                "MODELPORT_RETRAIN_ALERT": rule.name,
                "MODELPORT_RETRAIN_TRIGGER": str(self.trigger.id)}

    def _pipeline(self, run_id: str, env: dict[str, str]) -> int:
        """``modelport pipeline run`` to its end (or cancelled); its exit code."""
        on = self.spec.rule.on_alert
        assert on is not None
        argv = [self.spec.python, "-m", "modelport", "pipeline", "run", "--file",
                str(on.pipeline_file), "--stream", "--json", "--run-id", run_id]
        folder = self.spec.folder
        with (folder / RUN_FILE).open("wb") as out, (folder / LOG_FILE).open("wb") as err:
            # Its own session: a signal to the server's group does not reach it, so the
            # server decides how it stops (SIGTERM, a grace period, then SIGKILL).
            proc = subprocess.Popen(argv, cwd=on.pipeline_file.parent, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
            signalled = False
            while True:
                try:
                    return proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
                if self.cancelled.is_set() and not signalled:
                    proc.send_signal(signal.SIGTERM)
                    signalled = True
                    try:
                        return proc.wait(timeout=STOP_GRACE)
                    except subprocess.TimeoutExpired:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(proc.pid, signal.SIGKILL)
                        return proc.wait()

    def _record(self, registry: Registry, code: int, run_id: str) -> None:
        from modelport.retraining.outcome import describe

        assert self.trigger is not None
        outcome = describe(registry, self.spec.rule, code, run_id, self.spec.folder,
                           cancelled=self.cancelled.is_set())
        if not outcome.succeeded:
            outcome = outcome.with_abort(registry, self.spec.rule.endpoint)
        self.trigger = registry.retrains.record_outcome(
            self.trigger, succeeded=outcome.succeeded, reason=outcome.reason,
            details=outcome.details)
        (log.info if outcome.succeeded else log.warning)(
            "retraining %s (trigger #%d): %s", self.spec.rule.endpoint, self.trigger.id,
            outcome.reason)

    def _skip(self, registry: Registry, reason: str) -> None:
        rule = self.spec.rule
        assert rule.on_alert is not None
        registry.retrains.record_skip(rule.endpoint, rule=rule.name,
                                      alert_id=self.spec.alert.id,
                                      pipeline=rule.on_alert.pipeline, reason=reason)
        log.warning("retraining of %s skipped: %s", rule.endpoint, reason)

    def _fail_or_skip(self, registry: Registry, reason: str, details: dict[str, Any]) -> None:
        if self.trigger is None:
            self._skip(registry, reason)
        elif self.trigger.status == "running":
            self.trigger = registry.retrains.record_outcome(
                self.trigger, succeeded=False, reason=reason, details=details)


def _model_of(registry: Registry, endpoint: str) -> str:
    dep = registry.deployments.find(endpoint)
    return dep.model_name if dep is not None else endpoint


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def _span(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def read_run(folder: Path) -> dict[str, Any] | None:
    """The run ``pipeline run --json`` printed, if it printed one."""
    try:
        data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def last_error(folder: Path) -> str:
    """The pipeline's ``error:`` line (or its last line) from its log."""
    try:
        lines = (folder / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()[:500]
    for line in reversed(lines):  # a usage error comes in one of rich's boxes
        text = line.strip(" \t│┃|╭╮╰╯─━")
        if any(c.isalnum() for c in text):
            return text[:500]
    return ""


__all__ = ["CANCELLED_EXIT", "DATA_FILE", "LOG_FILE", "RUN_FILE", "JobSpec", "RetrainJob",
           "last_error", "read_run"]
