"""Do two models answer the same? Label agreement for classes, max abs diff for numbers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Equivalence:
    """The comparison of two models' predictions on the same rows."""

    rows: int
    label_agreement: float | None  # share of identical labels (classifiers)
    max_abs_diff: float | None  # largest |a - b| (numeric outputs)
    tolerance: float
    min_agreement: float
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return asdict(self)


def compare(expected: Any, got: Any, *, tolerance: float = 1e-5,
            min_agreement: float = 1.0) -> Equivalence:
    """Compare ``expected`` (the source's predictions) with ``got`` (the converted one's)."""
    a = np.asarray(expected).reshape(len(expected), -1) if len(expected) else np.asarray(expected)
    b = np.asarray(got).reshape(len(got), -1) if len(got) else np.asarray(got)
    if a.shape != b.shape:
        return Equivalence(len(a), None, None, tolerance, min_agreement, False,
                           f"shapes differ: {a.shape} vs {b.shape}")
    numeric = a.dtype.kind in "fc" or b.dtype.kind in "fc"
    if not numeric:
        agree = float((a.astype(str) == b.astype(str)).all(axis=1).mean()) if len(a) else 1.0
        ok = agree >= min_agreement
        return Equivalence(len(a), agree, None, tolerance, min_agreement, ok,
                           f"{agree:.2%} of labels agree (at least {min_agreement:.2%} needed)")
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    ok = bool(np.isfinite(diff) and diff <= tolerance)
    return Equivalence(len(a), None, diff, tolerance, min_agreement, ok,
                       f"max abs diff {diff:.3g} (tolerance {tolerance:g})")


__all__ = ["Equivalence", "compare"]
