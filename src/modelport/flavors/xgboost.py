"""XGBoost models: the ``Booster`` and its scikit-learn wrappers, in XGBoost's own UBJSON.

No pickle: the file holds trees and parameters only. The wrapper class is recorded by
name and rebuilt from a fixed list, never imported by a name found in an artifact.
XGBoost's C++ loader trusts its input (a truncated file or an out-of-range node index
crashes the whole process), so bytes are parsed and checked in Python first.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

import numpy as np
import orjson

from modelport.artifacts.bundle import Bundle
from modelport.errors import UnsupportedModelError
from modelport.flavors.base import (
    Flavor,
    Predictor,
    SavedModel,
    TrustPolicy,
    warn_on_major_mismatch,
)

UBJ, JSON = "model.ubj", "model.json"
# The only classes ``load`` rebuilds; ``meta["wrapper"]`` must name one of them.
WRAPPERS = (
    "Booster", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor"
)
# UBJSON numbers (big-endian) and the markers that carry no payload.
_DTYPE = {b"i": "i1", b"U": "u1", b"C": "u1", b"I": ">i2", b"l": ">i4", b"L": ">i8", b"d": ">f4",
          b"D": ">f8"}
_EMPTY = (b"Z", b"N", b"T", b"F")


def _distribution() -> str:
    # The CPU-only wheel is another distribution with the same import name.
    for dist in ("xgboost-cpu", "xgboost"):
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        return dist
    return "xgboost"


class XGBoostPredictor:
    """A loaded Booster or scikit-learn wrapper."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, data: Any) -> Any:
        """What ``model.predict`` returns; a bare Booster gets its input as a DMatrix."""
        import xgboost

        if not isinstance(self.model, xgboost.Booster):
            return self.model.predict(data)
        if not isinstance(data, xgboost.DMatrix):
            # Booster.predict takes only a DMatrix; categorical columns need the opt-in.
            cat = "c" in (self.model.feature_types or ())
            data = xgboost.DMatrix(data, enable_categorical=cat)
        return self.model.predict(data)


class XGBoostFlavor(Flavor):
    """XGBoost boosters and scikit-learn wrappers in native UBJSON (JSON accepted)."""

    name = "xgboost"
    libraries = (_distribution(), "numpy")
    extensions = (".json", ".ubj")

    def handles(self, model: Any) -> bool:
        """A ``Booster`` or one of the listed scikit-learn wrappers (not subclasses)."""
        cls = type(model)
        # Checked before importing so that a missing xgboost never breaks other flavors.
        if not cls.__module__.startswith("xgboost"):
            return False
        import xgboost

        return any(cls is getattr(xgboost, name, None) for name in WRAPPERS)

    def save(self, model: Any) -> SavedModel:
        """The booster as UBJSON, plus the wrapper class and its ``missing`` value."""
        from sklearn.exceptions import NotFittedError

        wrapper = type(model).__name__
        try:
            booster = model if wrapper == "Booster" else model.get_booster()
        except NotFittedError as exc:
            raise UnsupportedModelError(f"cannot save an unfitted {wrapper}; fit it first") from exc
        meta: dict[str, Any] = {"wrapper": wrapper}
        if wrapper != "Booster":
            # A constructor argument, not in the booster file, yet it decides which
            # inputs count as missing at predict time. A string, as JSON has no NaN.
            meta["missing"] = repr(float(model.missing))
        return SavedModel({UBJ: bytes(booster.save_raw("ubj"))}, meta)

    def load(self, bundle: Bundle, policy: TrustPolicy) -> Predictor:
        """Rebuild the recorded wrapper (from the fixed list) and load the booster into it."""
        warn_on_major_mismatch(
            _one_name(bundle.manifest.get("libraries") or {}),
            _one_name(self.library_versions()),
            "model",
        )
        import xgboost

        wrapper = bundle.meta.get("wrapper", "Booster")
        if not isinstance(wrapper, str) or wrapper not in WRAPPERS:
            raise UnsupportedModelError(f"unknown XGBoost model class {str(wrapper)[:80]!r}")
        data = bundle.read(JSON if JSON in bundle.names() else UBJ)
        check_model_bytes(data)
        try:
            if wrapper == "Booster":
                model = xgboost.Booster()
            else:
                missing = float(bundle.meta.get("missing", "nan"))
                model = getattr(xgboost, wrapper)(missing=missing)
            model.load_model(bytearray(data))
        except (xgboost.core.XGBoostError, TypeError, ValueError) as exc:
            raise UnsupportedModelError(
                f"model bundle {bundle.digest[:19]} holds no loadable XGBoost model: "
                f"{_first_line(exc)}"
            ) from exc
        return XGBoostPredictor(model)

    def sniff(self, data: bytes) -> bool:
        """XGBoost JSON or UBJSON: an object with ``learner`` and ``version``."""
        return _document(data) is not None

    def from_file(self, data: bytes, extension: str) -> SavedModel:
        """A ``.json``/``.ubj`` model file, kept as-is once XGBoost has loaded it."""
        import xgboost

        name = check_model_bytes(data)
        try:
            xgboost.Booster().load_model(bytearray(data))
        except (xgboost.core.XGBoostError, ValueError) as exc:  # ValueError: undecodable message
            raise UnsupportedModelError(
                f"XGBoost cannot load this file: {_first_line(exc)}"
            ) from exc
        return SavedModel({name: data}, {"wrapper": _wrapper_recorded_in(data)})


_ESTIMATOR_TYPES = {"classifier": "XGBClassifier", "regressor": "XGBRegressor",
                    "ranker": "XGBRanker"}


def _wrapper_recorded_in(data: bytes) -> str:
    """The scikit-learn wrapper a file was saved from (XGBoost records it), else Booster.

    A file saved by ``XGBClassifier.save_model`` must predict labels, as XGBoost's own
    ``XGBClassifier().load_model(file)`` does, not the raw booster's probabilities.
    """
    found = _document(data)
    attributes = (found[1].get("learner") or {}).get("attributes") if found else None
    raw = attributes.get("scikit_learn") if isinstance(attributes, dict) else None
    try:
        kind = json.loads(raw).get("_estimator_type") if isinstance(raw, str) else None
    except (ValueError, AttributeError):
        kind = None
    return _ESTIMATOR_TYPES.get(kind, "Booster") if isinstance(kind, str) else "Booster"


def check_model_bytes(data: bytes) -> str:
    """The bundle file name for ``data``; UnsupportedModelError unless it is a sound model."""
    found = _document(data)
    if found is None:
        raise UnsupportedModelError(
            "not an XGBoost model: expected XGBoost JSON or UBJSON with 'learner' and "
            "'version' (is the file truncated?)"
        )
    name, doc = found
    try:
        _check_trees(doc["learner"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise UnsupportedModelError(f"damaged XGBoost model: {exc}") from exc
    return name


def _document(data: bytes) -> tuple[str, dict[str, Any]] | None:
    try:
        if data[:1] == b"{" and len(data) > 1 and data[1:2] in b"iUIlL":
            name, doc = UBJ, _UBJReader(data).document()
        else:
            name, doc = JSON, orjson.loads(data)
    except ValueError:  # also orjson's and UTF-8 decoding errors
        return None
    ok = isinstance(doc, dict) and isinstance(doc.get("learner"), dict) and "version" in doc
    return (name, doc) if ok else None


def _check_trees(learner: dict[str, Any]) -> None:
    # Indices XGBoost follows without bounds checks at predict time: refuse them here.
    params = learner["learner_model_param"]
    n_features = int(params["num_feature"])
    groups = max(int(params.get("num_class", 0)), int(params.get("num_target", 1)), 1)
    gbm = learner["gradient_booster"]
    model = gbm.get("gbtree", gbm).get("model", {})  # dart nests a gbtree
    trees = model.get("trees", [])  # gblinear has none
    info = _ints(model.get("tree_info", []))
    if len(info) != len(trees) or np.any((info < 0) | (info >= groups)):
        raise ValueError("tree_info does not match the trees")
    for tree in trees:
        left, right = _ints(tree["left_children"]), _ints(tree["right_children"])
        split, n = _ints(tree["split_indices"]), len(left)
        if len(right) != n or len(split) != n:
            raise ValueError(f"tree {tree.get('id')} has arrays of different lengths")
        inner = left != -1
        kids = np.concatenate([left[inner], right[inner]])
        # Every node but the root has exactly one parent: no cycles, no strays.
        bad = (
            np.any(inner != (right != -1))
            or np.any((kids <= 0) | (kids >= n))
            or len(np.unique(kids)) != len(kids)
            or np.any((split[inner] < 0) | (split[inner] >= n_features))
        )
        if bad:
            raise ValueError(f"tree {tree.get('id')} has out-of-range node or feature indices")
        # XGBoost walks ``parents`` too (e.g. for SHAP values): they must mirror the children.
        parents, (inner_ids,) = _ints(tree["parents"]), np.nonzero(inner)
        if len(parents) != n or np.any(parents[left[inner]] != inner_ids) or np.any(
            parents[right[inner]] != inner_ids
        ):
            raise ValueError(f"tree {tree.get('id')} has inconsistent parents")
        # Category lists belong to exactly the categorical splits, and stay in bounds.
        nodes = _ints(tree.get("categories_nodes", []))
        seg = _ints(tree.get("categories_segments", []))
        size = _ints(tree.get("categories_sizes", []))
        kind = _ints(tree.get("split_type", [0] * n))
        cats = _ints(tree.get("categories", []))
        bad = (
            len(seg) != len(nodes)
            or len(size) != len(nodes)
            or len(kind) != n
            or np.any((kind != 0) & ((kind != 1) | ~inner))
            or not np.array_equal(np.sort(nodes), np.flatnonzero(kind == 1))
            or np.any((seg < 0) | (size < 0) | (seg + size > len(cats)))
            or np.any((cats < 0) | (cats >= 1 << 24))  # XGBoost's own category limit
        )
        if bad:
            raise ValueError(f"tree {tree.get('id')} has out-of-range categories")


def _ints(values: Any) -> np.ndarray:
    out = np.asarray(values, dtype=np.int64)
    if out.ndim != 1:
        raise ValueError("expected a list of integers")
    return out


def _first_line(exc: Exception) -> str:
    # XGBoost appends a C++ stack trace to its messages.
    return (str(exc).splitlines() or [""])[0][:200]


def _one_name(versions: dict[str, str]) -> dict[str, str]:
    # Saved with xgboost-cpu and loaded with xgboost (or back) is the same library.
    return {("xgboost" if k == "xgboost-cpu" else k): v for k, v in versions.items()}


class _UBJReader:
    """A bounds-checked UBJSON reader: truncated or malformed input raises ValueError."""

    def __init__(self, data: bytes) -> None:
        self.buf, self.pos = memoryview(data), 0

    def document(self) -> Any:
        """The whole input as one value; trailing bytes are an error."""
        value = self.value(self.take(1), 0)
        if self.pos != len(self.buf):
            raise ValueError("trailing bytes after UBJSON document")
        return value

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError("truncated UBJSON")
        self.pos += n
        return bytes(self.buf[self.pos - n : self.pos])

    def length(self) -> int:
        """A string length or count: an integer number."""
        marker = self.take(1)
        if marker not in (b"i", b"U", b"I", b"l", b"L"):
            raise ValueError(f"UBJSON length marked {marker!r}")
        return int(self.number(marker))

    def number(self, marker: bytes) -> Any:
        """One number of the given marker's type."""
        if marker not in _DTYPE:
            raise ValueError(f"unexpected UBJSON marker {marker!r}")
        dtype = np.dtype(_DTYPE[marker])
        return np.frombuffer(self.take(dtype.itemsize), dtype)[0].item()

    def value(self, marker: bytes, depth: int) -> Any:
        """One value whose marker has been read."""
        if marker in (b"S", b"H"):
            return self.take(self.length()).decode()
        if marker in (b"[", b"{"):
            return self.container(marker == b"{", depth + 1)
        return None if marker in _EMPTY else self.number(marker)

    def container(self, keyed: bool, depth: int) -> Any:
        """An array or object, optionally typed (``$``) and counted (``#``)."""
        if depth > 64:
            raise ValueError("UBJSON nested too deeply")
        kind = count = None
        if self.buf[self.pos : self.pos + 1] == b"$":
            self.pos += 1
            kind = self.take(1)
            if self.buf[self.pos : self.pos + 1] != b"#":
                raise ValueError("typed UBJSON container without a count")
        if self.buf[self.pos : self.pos + 1] == b"#":
            self.pos += 1
            count = self.length()
        if kind in _EMPTY and not keyed:
            return None
        if kind in _DTYPE and not keyed:  # typed array of numbers: one block, no markers
            dtype = np.dtype(_DTYPE[kind])
            return np.frombuffer(self.take(count * dtype.itemsize), dtype)  # type: ignore[operator]
        out: Any = {} if keyed else []
        done, end = 0, b"}" if keyed else b"]"
        while done != count:
            if count is None and self.buf[self.pos : self.pos + 1] == end:
                self.pos += 1
                break
            key = self.take(self.length()).decode() if keyed else None
            item = self.value(kind or self.take(1), depth)
            if keyed:
                out[key] = item
            else:
                out.append(item)
            done += 1
        return out
