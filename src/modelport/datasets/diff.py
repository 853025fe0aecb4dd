"""What changed between two dataset versions: the schema, and each feature's profile.

Schema: columns added, removed, with another dtype, or the same columns in another
order. Profiles: per feature present in both, the missing share, mean and std (numeric)
and the population stability index of the new distribution against the old one.
Both profiles are summaries (bins and category counts, no raw values), so a numeric
PSI spreads the new version's mass uniformly inside each of its quantile bins (between
its min and max at the ends) and re-bins it onto the old version's edges; categories
outside either side's top list count in its "other" bucket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from modelport.registry.entities import DatasetVersion

if TYPE_CHECKING:
    import numpy as np

ADDED, REMOVED, TYPE_CHANGED, REORDERED = "added", "removed", "type_changed", "reordered"
NUMERIC, CATEGORICAL = "numeric", "categorical"  # as modelport.monitoring.profile names them


@dataclass(frozen=True)
class ColumnChange:
    """One schema change: a column added, removed, retyped, or the order changed."""

    column: str
    change: str
    old_dtype: str | None = None
    new_dtype: str | None = None

    def __str__(self) -> str:
        if self.change == ADDED:
            return f"+ {self.column} ({self.new_dtype})"
        if self.change == REMOVED:
            return f"- {self.column} ({self.old_dtype})"
        if self.change == TYPE_CHANGED:
            return f"~ {self.column}: {self.old_dtype} -> {self.new_dtype}"
        return "~ column order changed"


@dataclass(frozen=True)
class FeatureChange:
    """How one feature's profile moved from the old version to the new one."""

    feature: str
    old_kind: str
    new_kind: str
    old_missing: float
    new_missing: float
    old_mean: float | None = None
    new_mean: float | None = None
    old_std: float | None = None
    new_std: float | None = None
    psi: float | None = None  # None when the kinds differ


@dataclass(frozen=True)
class DatasetDiff:
    """Two versions compared: rows, fingerprints, schema changes, feature changes."""

    old: str
    new: str
    old_rows: int
    new_rows: int
    same_content: bool
    schema: tuple[ColumnChange, ...]
    features: tuple[FeatureChange, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"old": self.old, "new": self.new, "old_rows": self.old_rows,
                "new_rows": self.new_rows, "same_content": self.same_content,
                "schema": [asdict(c) for c in self.schema],
                "features": [asdict(f) for f in self.features]}


def schema_changes(old: Sequence[Mapping[str, str]], new: Sequence[Mapping[str, str]]
                   ) -> list[ColumnChange]:
    """Columns added, removed or retyped from ``old`` to ``new`` (``{"name", "dtype"}``
    lists), then a reorder of the columns both keep; empty when the schemas agree."""
    before = {c["name"]: c["dtype"] for c in old}
    after = {c["name"]: c["dtype"] for c in new}
    out = [ColumnChange(n, REMOVED, old_dtype=t) for n, t in before.items() if n not in after]
    out += [ColumnChange(n, ADDED, new_dtype=t) for n, t in after.items() if n not in before]
    out += [ColumnChange(n, TYPE_CHANGED, t, after[n]) for n, t in before.items()
            if n in after and after[n] != t]
    kept_old = [n for n in before if n in after]
    kept_new = [n for n in after if n in before]
    if kept_old != kept_new:
        out.append(ColumnChange("", REORDERED))
    return out


def diff(old: DatasetVersion, new: DatasetVersion) -> DatasetDiff:
    """Compare two dataset versions from their registry rows (no data is read)."""
    old_features = {f["name"]: f for f in old.profile.get("features", [])}
    changes = [feature_change(old_features[f["name"]], f)
               for f in new.profile.get("features", []) if f["name"] in old_features]
    return DatasetDiff(old=old.uri, new=new.uri, old_rows=old.rows, new_rows=new.rows,
                       same_content=old.fingerprint == new.fingerprint,
                       schema=tuple(schema_changes(old.schema, new.schema)),
                       features=tuple(changes))


def feature_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> FeatureChange:
    """One feature's change between two profile summaries (``FeatureProfile.to_dict``)."""
    old_stats, new_stats = old.get("stats") or {}, new.get("stats") or {}
    value = None
    if old["kind"] == new["kind"] == NUMERIC:
        value = _psi(*_numeric_counts(old, new))
    elif old["kind"] == new["kind"] == CATEGORICAL:
        value = _psi(*_category_counts(old, new))
    return FeatureChange(
        feature=str(new["name"]), old_kind=old["kind"], new_kind=new["kind"],
        old_missing=_rate(old), new_missing=_rate(new),
        old_mean=old_stats.get("mean"), new_mean=new_stats.get("mean"),
        old_std=old_stats.get("std"), new_std=new_stats.get("std"), psi=value)


def _rate(feature: Mapping[str, Any]) -> float:
    count = int(feature.get("count", 0))
    return int(feature.get("missing", 0)) / count if count else 0.0


def _psi(old: np.ndarray, new: np.ndarray) -> float | None:
    from modelport.monitoring.stattests import psi

    if old.sum() <= 0 or new.sum() <= 0:
        return None  # a side with no values: nothing to compare
    return round(psi(old, new), 6)


def _numeric_counts(old: Mapping[str, Any], new: Mapping[str, Any]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Old counts on old bins, and new mass re-binned onto the old edges."""
    import numpy as np

    old_counts = np.asarray(old["counts"], float)
    edges = np.asarray(old.get("edges") or [], float)
    new_counts = np.asarray(new["counts"], float)
    total = new_counts.sum()
    stats = new.get("stats") or {}
    new_edges = list(new.get("edges") or [])
    if total <= 0 or "min" not in stats or "max" not in stats:
        return old_counts, np.zeros_like(old_counts)
    # The new distribution's CDF, piecewise linear through its bin edges.
    xs = np.asarray([stats["min"], *new_edges, stats["max"]], float)
    ys = np.concatenate([[0.0], np.cumsum(new_counts)[:-1] / total, [1.0]])
    # P(X < x) jumps at a value many rows share (the max may be an edge): keep the lower
    # side of each jump, as the bins are [lower, upper).
    xs, first = np.unique(np.maximum.accumulate(xs), return_index=True)
    cdf = np.interp(edges, xs, ys[first], left=0.0, right=1.0)
    mass = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    return old_counts, np.clip(mass, 0.0, None) * total


def _category_counts(old: Mapping[str, Any], new: Mapping[str, Any]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Counts over the union of both top lists, plus each side's "other" bucket."""
    import numpy as np

    def table(f: Mapping[str, Any]) -> tuple[dict[str, float], float]:
        cats = [str(c) for c in f.get("categories") or []]
        counts = [float(c) for c in f["counts"]]
        return dict(zip(cats, counts[:-1], strict=False)), counts[-1] if counts else 0.0

    a, a_other = table(old)
    b, b_other = table(new)
    names = list(dict.fromkeys([*a, *b]))
    return (np.asarray([*(a.get(n, 0.0) for n in names), a_other]),
            np.asarray([*(b.get(n, 0.0) for n in names), b_other]))


__all__ = ["ADDED", "REMOVED", "REORDERED", "TYPE_CHANGED", "ColumnChange", "DatasetDiff",
           "FeatureChange", "diff", "feature_change", "schema_changes"]
