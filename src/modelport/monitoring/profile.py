"""Reference profiles: what training data and the model's outputs on it looked like.

A profile is stored as JSON in a version's bundle (``reference_profile.json``), so it is
content-addressed and immutable like the model. Per feature it keeps the missing rate
and either quantile bins (numeric) or category counts (categorical), plus a bounded
sample of raw values for tests that need one (Kolmogorov-Smirnov, Wasserstein).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelport.errors import ArtifactIntegrityError

PROFILE_FORMAT = "modelport.profile/1"
NUMERIC, CATEGORICAL = "numeric", "categorical"


@dataclass(frozen=True)
class FeatureProfile:
    """One column of the reference.

    Numeric: ``edges`` are the interior bin edges, so bin ``i`` is
    ``[edges[i-1], edges[i])`` with open ends (``-inf`` and ``+inf``); ``counts`` has
    ``len(edges) + 1`` entries. Categorical: ``counts[i]`` counts ``categories[i]`` and
    one last entry counts every other value ("other"). Missing values (None, NaN,
    infinities) are in ``missing``, never in ``counts``.
    """

    name: str
    kind: str  # NUMERIC or CATEGORICAL
    dtype: str
    count: int  # rows, missing included
    missing: int
    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[Any, ...] = ()
    value_type: str = "number"  # categorical values: "number" or "string"
    distinct: int = 0  # distinct present values (categorical; numeric up to the cut-off)
    sample: tuple[float, ...] = ()
    stats: Mapping[str, float] = field(default_factory=dict)

    @property
    def present(self) -> int:
        """Rows with a value."""
        return self.count - self.missing

    @property
    def missing_rate(self) -> float:
        """Share of rows without a value (0 for an empty reference)."""
        return self.missing / self.count if self.count else 0.0

    @property
    def frequencies(self) -> tuple[float, ...]:
        """``counts`` as shares of the present values."""
        total = sum(self.counts)
        return tuple(c / total for c in self.counts) if total else tuple(0.0 for _ in self.counts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (frequencies included for readers that want shares)."""
        out: dict[str, Any] = {
            "name": self.name, "kind": self.kind, "dtype": self.dtype, "count": self.count,
            "missing": self.missing, "missing_rate": self.missing_rate,
            "counts": list(self.counts), "frequencies": list(self.frequencies),
        }
        if self.kind == NUMERIC:
            out.update(edges=list(self.edges), stats=dict(self.stats), sample=list(self.sample))
        else:
            out.update(categories=list(self.categories), value_type=self.value_type,
                       distinct=self.distinct)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureProfile:
        """The inverse of :meth:`to_dict`."""
        kind = data["kind"]
        if kind not in (NUMERIC, CATEGORICAL):
            raise ValueError(f"unknown feature kind {kind!r}")
        counts = tuple(int(c) for c in data["counts"])
        edges = tuple(float(e) for e in data.get("edges", ()))
        categories = tuple(data.get("categories", ()))
        expected = len(edges) + 1 if kind == NUMERIC else len(categories) + 1
        if len(counts) != expected:
            raise ValueError(f"feature {data['name']!r}: {len(counts)} counts for "
                             f"{expected} bins")
        return cls(
            name=str(data["name"]), kind=kind, dtype=str(data.get("dtype", "")),
            count=int(data["count"]), missing=int(data["missing"]), counts=counts, edges=edges,
            categories=categories, value_type=str(data.get("value_type", "number")),
            distinct=int(data.get("distinct", 0)),
            sample=tuple(float(v) for v in data.get("sample", ())),
            stats={str(k): float(v) for k, v in (data.get("stats") or {}).items()
                   if v is not None},
        )


@dataclass(frozen=True)
class ReferenceProfile:
    """The profile of a version's training data and of the model's outputs on it.

    ``predictions`` is None when no output profile could be made (``note`` says why);
    ``prediction_rows`` is the number of training rows the model was run on (a seeded
    sample when the training data is larger).
    """

    rows: int
    features: tuple[FeatureProfile, ...]
    predictions: tuple[FeatureProfile, ...] | None = None
    prediction_rows: int = 0
    settings: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def names(self) -> list[str]:
        """Feature names in column order."""
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureProfile | None:
        """The profile of feature ``name``, or None."""
        return next((f for f in self.features if f.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "format": PROFILE_FORMAT, "rows": self.rows, "settings": dict(self.settings),
            "features": [f.to_dict() for f in self.features],
            "predictions": None if self.predictions is None
            else [f.to_dict() for f in self.predictions],
            "prediction_rows": self.prediction_rows, "note": self.note,
        }

    def to_json(self) -> bytes:
        """The bytes stored in the bundle (non-finite numbers as null)."""
        return orjson.dumps(finite(self.to_dict()), option=orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """The inverse of :meth:`to_dict`; a malformed profile is an integrity error."""
        if not isinstance(data, Mapping) or data.get("format") != PROFILE_FORMAT:
            got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise ArtifactIntegrityError(f"not a reference profile (format {got!r})")
        try:
            preds = data.get("predictions")
            return cls(
                rows=int(data["rows"]),
                features=tuple(FeatureProfile.from_dict(f) for f in data["features"]),
                predictions=None if preds is None
                else tuple(FeatureProfile.from_dict(f) for f in preds),
                prediction_rows=int(data.get("prediction_rows", 0)),
                settings=dict(data.get("settings") or {}), note=str(data.get("note", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactIntegrityError(f"malformed reference profile: {exc}") from exc

    @classmethod
    def from_json(cls, raw: bytes) -> ReferenceProfile:
        """A profile from the bytes :meth:`to_json` wrote."""
        try:
            return cls.from_dict(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise ArtifactIntegrityError(f"reference profile is not JSON: {exc}") from exc


def finite(value: Any) -> Any:
    """``value`` (JSON-shaped) with NaN and infinities as None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
