"""Batch scoring on Ray Data: a data set larger than memory, the same artifact as online.

``score`` reads Parquet (a file or a folder of files) or CSV with Ray Data, runs
``map_batches`` through a pool of actors that each load the version once from the
registry (digest-checked, like a server), and writes Parquet files. Output goes to a
temporary folder beside ``--output`` and is renamed into place only when every block
has been written: a job that fails, or a node that dies mid-batch beyond Ray's retries,
leaves no output that could be mistaken for a complete one.

Ray is started locally (``ray.init`` with the dashboard off: its job API is a known
attack surface) unless ``RAY_ADDRESS`` points at an existing cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import (
    ConfigurationError,
    InvalidInputError,
    ModelExecutionError,
    ModelportError,
)

# Ray Data restarts a dead actor and retries its batch forever by default: a model that
# kills its worker on some input (out of memory, a crash in native code) would hang the
# job. A few retries ride out a lost node; past them the job fails and says why.
RETRIES = 3


@dataclass(frozen=True)
class BatchResult:
    """What a batch scoring job did."""

    model: str
    rows: int
    files: int
    seconds: float
    output: str

    @property
    def rows_per_second(self) -> float:
        """Throughput of the whole job (reading, scoring, writing)."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class _Scorer:
    """One Ray actor: loads the version once, scores DataFrame batches."""

    def __init__(self, settings: dict[str, Any], uri: str, trusted: bool) -> None:
        from modelport.client import Registry
        from modelport.config import Settings

        registry = Registry(settings=Settings.load(**settings))
        self.model = registry.load_model(uri, trusted=trusted)
        registry.close()

    def __call__(self, batch: Any) -> Any:
        from modelport.scoring.frames import predictions_frame

        # Arrow in, converted here: Ray's own pandas batches may carry Arrow-backed
        # dtypes that the signature check rightly refuses as not float64.
        return predictions_frame(self.model.predict(batch.to_pandas()))


def _read(path: Path) -> Any:
    import ray.data

    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        kinds = {p.suffix.lower() for p in files}
        if not files:
            raise InvalidInputError(f"input folder {path} holds no files")
        if kinds == {".parquet"}:
            return ray.data.read_parquet(str(path))
        if kinds == {".csv"}:
            return ray.data.read_csv(str(path))
        raise InvalidInputError(f"input folder {path} mixes file types {sorted(kinds)}: "
                                "use only .parquet or only .csv files")
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidInputError(f"input not found: {path}")
    if suffix == ".parquet":
        return ray.data.read_parquet(str(path))
    if suffix == ".csv":
        return ray.data.read_csv(str(path))
    raise InvalidInputError(f"--engine ray reads .parquet or .csv (a file or a folder), "
                            f"not {suffix or 'a file without a suffix'}")


def _start_ray(num_cpus: int | None) -> None:
    import ray
    import ray.data

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"])
        return
    # address="local": always a new instance, never a Ray another user started here.
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
             log_to_driver=False, configure_logging=False, _node_ip_address="127.0.0.1")


def score(settings: dict[str, Any], uri: str, input_path: Path, output: Path, *,
          trusted: bool = False, batch_size: int = 100_000, actors: int | None = None,
          num_cpus: int | None = None, retries: int = RETRIES) -> BatchResult:
    """Score ``input_path`` with ``uri`` on Ray Data; Parquet files in ``output``
    (a batch whose worker dies is retried ``retries`` times on a fresh one)."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidInputError(f"--output {output} exists and is not an empty folder")
    if not output.parent.is_dir():
        raise InvalidInputError(f"output folder's parent not found: {output.parent}")
    try:
        import ray
    except ImportError as exc:
        raise ConfigurationError("--engine ray needs Ray: pip install 'modelport[ray]'") from exc
    _start_ray(num_cpus)
    import ray
    import ray.data

    started = time.perf_counter()
    cpus = float(ray.cluster_resources().get("CPU", 1))
    pool = actors or max(1, int(cpus) - 1)
    # Reading and writing blocks are tasks that each need a whole CPU: if the actors
    # held every CPU the job would wait forever, so one CPU is always left to them.
    per_actor = max(0.05, round((cpus - 1) / pool if cpus > 1 else 0.5 / pool, 2))
    data = _read(input_path)
    tmp = output.with_name(f".{output.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        scored = data.map_batches(_Scorer, fn_constructor_args=(settings, uri, trusted),
                                  batch_size=batch_size, batch_format="pyarrow",
                                  compute=ray.data.ActorPoolStrategy(size=pool),
                                  num_cpus=per_actor, max_restarts=retries,
                                  max_task_retries=retries)
        scored.write_parquet(str(tmp))
        rows = _count_rows(tmp)
    except (InvalidInputError, ConfigurationError):
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:  # Ray wraps worker failures in its own exception types
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelExecutionError(f"batch scoring with {uri} failed; no output was written: "
                                  f"{_root_cause(exc)}") from exc
    if output.exists():
        output.rmdir()  # empty, checked above
    os.replace(tmp, output)
    files = sum(1 for p in output.iterdir() if p.suffix == ".parquet")
    return BatchResult(uri, rows, files, time.perf_counter() - started, str(output))


def _count_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.glob("*.parquet"))


def _root_cause(exc: BaseException) -> str:
    """The original error of a Ray failure (Ray wraps it and adds retry advice)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ModelportError):
            return seen.message
        seen = getattr(seen, "cause", None) or seen.__cause__
    found = re.findall(r"modelport\.errors\.\w+: (.+)", str(exc))
    if found:
        return str(found[-1])[:300]
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


__all__ = ["BatchResult", "score"]
