"""Small helpers for monitoring tests: tensors and a writer that can be held back."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelport.monitoring.layout import partition, write_atomic
from modelport.monitoring.tabulate import prediction_tables

WAIT = 10.0  # seconds a test waits for the writer thread before failing clearly

IRIS_SCHEMA = {"type": "dataframe", "columns": [
    {"name": n, "dtype": "float64"} for n in ("sepal_length", "sepal_width", "petal_length",
                                              "petal_width")]}


@dataclass(frozen=True)
class T:
    """A stand-in for serving's Tensor (the log only needs .name and .data)."""

    name: str
    data: np.ndarray[Any, Any]


def rows(n: int, start: float = 0.0) -> list[T]:
    """One 2-D table tensor of n iris-like rows."""
    return [T("input-0", np.arange(n * 4, dtype=np.float64).reshape(n, 4) + start)]


def labels_out(values: list[Any]) -> list[T]:
    return [T("output-0", np.asarray(values))]


def pairs(tensors: list[T]) -> tuple[tuple[str, np.ndarray[Any, Any]], ...]:
    """Tensors as a log record holds them: (name, array) pairs."""
    return tuple((t.name, t.data) for t in tensors)


class Gate:
    """A before_write hook that blocks the writer until released (no sleeps, no races)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def __call__(self, n: int) -> None:
        self.batches.append(n)
        self.entered.set()
        if not self.release.wait(WAIT):
            raise AssertionError("test never released the writer")


@pytest.fixture
def gate() -> Gate:
    g = Gate()
    yield g
    g.release.set()


def write_predictions(root: Path, records: list[tuple[str, datetime, int, object]],
                      endpoint: str = "iris", variant: str = "stable", tag: str = "x") -> None:
    """(request id, time, version, prediction) rows, written as the writer would."""
    recs = [(endpoint, ts.timestamp(), rid, version, variant, pairs(rows(1)),
             pairs(labels_out([pred])), 1.0, None, 1) for rid, ts, version, pred in records]
    for i, (ep, day, table, _) in enumerate(prediction_tables(recs)):
        write_atomic(table, partition(root, "predictions", ep, day) / f"t-{tag}-{i:06d}.parquet")
