"""LightGBM models: the ``Booster`` and its scikit-learn wrappers, in LightGBM's text format.

No pickle: ``model.txt`` holds trees and parameters only. A classifier's labels are
kept in the bundle's metadata so that ``predict`` returns them, as the wrapper does.
LightGBM's C++ parser trusts its input (a truncated file aborts the whole process),
so the text is checked in Python before LightGBM sees it.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from modelport.artifacts.bundle import Bundle
from modelport.errors import UnsupportedModelError
from modelport.flavors.base import (
    Flavor,
    Predictor,
    SavedModel,
    TrustPolicy,
    warn_on_major_mismatch,
)

FILE = "model.txt"
# The only classes a bundle may name; all load as a Booster plus, for classifiers, labels.
WRAPPERS = ("Booster", "LGBMClassifier", "LGBMRegressor", "LGBMRanker")
_MAGIC = re.compile(rb"tree\nversion=v\d")
_LABEL_KINDS = "biufUO"  # numpy kinds whose values survive a JSON round trip
# Tree arrays LightGBM reads with a fixed count, often without a bounds check.
_INNER = ("split_feature", "split_gain", "threshold", "decision_type", "left_child",
          "right_child", "internal_value", "internal_weight", "internal_count")
_PER_LEAF = ("leaf_value", "leaf_weight", "leaf_count", "leaf_const", "num_features")
_INTS = ("split_feature", "decision_type", "left_child", "right_child", "internal_count",
         "leaf_count", "num_features", "leaf_features", "cat_boundaries", "cat_threshold")
_FLOATS = ("split_gain", "threshold", "internal_value", "internal_weight", "leaf_value",
           "leaf_weight", "leaf_const", "leaf_coeff")
_PARAM_RE = re.compile(rb"\[[a-z0-9_]+: [^\n]*\]")
_INT_RE = re.compile(r"-?[0-9]{1,10}")
_FLOAT_RE = re.compile(r"-?(?:[0-9]+\.?[0-9]*(?:[eE][-+]?[0-9]+)?|inf|nan)")


class LightGBMPredictor:
    """A loaded LightGBM booster that answers like the wrapper it was saved from."""

    def __init__(self, model: Any, classes: np.ndarray | None) -> None:
        self.model = model
        self.classes = classes

    def predict(self, data: Any) -> Any:
        """Booster output; for classifiers, the label with the highest probability."""
        out = self.model.predict(data)
        if self.classes is None:
            return out
        # The same arithmetic as LGBMClassifier.predict, so ties break the same way.
        proba = out if out.ndim == 2 else np.vstack((1.0 - out, out)).transpose()
        return self.classes[np.argmax(proba, axis=1)]


class LightGBMFlavor(Flavor):
    """LightGBM boosters and scikit-learn wrappers in native text format."""

    name = "lightgbm"
    libraries = ("lightgbm", "numpy")
    extensions = (".txt",)

    def handles(self, model: Any) -> bool:
        """A ``Booster`` or one of the listed scikit-learn wrappers (not subclasses)."""
        cls = type(model)
        # Checked before importing so that a missing lightgbm never breaks other flavors.
        if not cls.__module__.startswith("lightgbm"):
            return False
        import lightgbm

        return any(cls is getattr(lightgbm, name, None) for name in WRAPPERS)

    def save(self, model: Any) -> SavedModel:
        """``model_to_string()``, plus the wrapper class and a classifier's labels."""
        from sklearn.exceptions import NotFittedError

        wrapper = type(model).__name__
        try:
            booster = model if wrapper == "Booster" else model.booster_
        except NotFittedError as exc:
            raise UnsupportedModelError(f"cannot save an unfitted {wrapper}; fit it first") from exc
        meta: dict[str, Any] = {"wrapper": wrapper}
        # With a custom objective the wrapper returns raw scores, not labels.
        if wrapper == "LGBMClassifier" and not callable(model.objective):
            classes = np.asarray(model.classes_)
            labels = classes.tolist()
            if classes.dtype.kind not in _LABEL_KINDS or not all(
                isinstance(v, (str, int, float)) for v in labels
            ):
                raise UnsupportedModelError(f"cannot store class labels of type {classes.dtype}")
            meta.update(classes=labels, classes_dtype=classes.dtype.str)
        # Default num_iteration: up to the best iteration, which is what predict uses.
        return SavedModel({FILE: booster.model_to_string().encode()}, meta)

    def load(self, bundle: Bundle, policy: TrustPolicy) -> Predictor:
        """A predictor over ``lightgbm.Booster(model_str=...)``."""
        warn_on_major_mismatch(
            bundle.manifest.get("libraries") or {}, self.library_versions(), "model"
        )
        meta = bundle.meta
        wrapper = meta.get("wrapper", "Booster")
        if not isinstance(wrapper, str) or wrapper not in WRAPPERS:
            raise UnsupportedModelError(f"unknown LightGBM model class {str(wrapper)[:80]!r}")
        booster = _booster(bundle.read(FILE))
        if "classes" not in meta:
            return LightGBMPredictor(booster, None)
        try:
            dtype = np.dtype(meta.get("classes_dtype", "O"))
            if dtype.kind not in _LABEL_KINDS:
                raise TypeError(f"labels of type {dtype}")
            # A string width comes from the labels themselves, not from the manifest.
            classes = np.asarray(meta["classes"], dtype="U" if dtype.kind == "U" else dtype)
        except (TypeError, ValueError) as exc:
            raise UnsupportedModelError(f"unreadable class labels: {exc}") from exc
        # argmax indexes the labels: there must be one per booster output column.
        expected = max(2, booster.num_model_per_iteration())
        if classes.shape != (expected,):
            raise UnsupportedModelError(f"model bundle needs {expected} class labels")
        return LightGBMPredictor(booster, classes)

    def sniff(self, data: bytes) -> bool:
        """Text starting with ``tree`` and ``version=v``."""
        return _MAGIC.match(data) is not None

    def from_file(self, data: bytes, extension: str) -> SavedModel:
        """A ``.txt`` model file, kept as-is once LightGBM has loaded it."""
        _booster(data)
        return SavedModel({FILE: data}, {"wrapper": "Booster"})


def check_model_text(data: bytes) -> str:
    """``data`` as text; UnsupportedModelError unless it is a complete, consistent model."""
    if not _MAGIC.match(data):
        raise UnsupportedModelError("not a LightGBM text model (no 'tree' and 'version=v')")
    try:
        text = data.decode("utf-8")
        _check_structure(data)
    except (ValueError, KeyError, IndexError, OverflowError) as exc:
        raise UnsupportedModelError(f"damaged or truncated LightGBM model: {exc}") from exc
    return text


def _booster(data: bytes) -> Any:
    import lightgbm

    text = check_model_text(data)
    try:
        return lightgbm.Booster(model_str=text)
    except (lightgbm.basic.LightGBMError, ValueError, TypeError) as exc:
        raise UnsupportedModelError(f"LightGBM cannot load this model: {exc}") from exc


def _check_structure(data: bytes) -> None:
    # LightGBM finds each tree by the byte offsets in ``tree_sizes`` and parses trees in
    # parallel threads, where any error aborts the process: everything must add up.
    if b"\x00" in data or b"\r" in data:  # LightGBM stops at NUL and splits lines at CR
        raise ValueError("unexpected NUL or CR characters")
    end = data.find(b"\nend of trees\n")
    params = data.find(b"\nparameters:\n", end)
    params_end = data.find(b"\nend of parameters\n", params)
    if end == -1 or (params != -1 and params_end == -1):
        raise ValueError("the file is cut short")
    if params != -1 and not all(
        _PARAM_RE.fullmatch(line) for line in data[params + 13 : params_end].split(b"\n") if line
    ):
        raise ValueError("malformed parameters section")
    first = re.search(rb"^Tree=", data, re.MULTILINE)
    # Like LightGBM: every key=value line before the first tree is a header field.
    head = dict(line.split("=", 1) for line in data[: first.start() if first else None]
                .decode().split("\n") if "=" in line)
    n_class, n_features = _int(head["num_class"]), _int(head["max_feature_idx"]) + 1
    declared = {int(n) for n in re.findall(r"num_class:(\d+)", head.get("objective", ""))}
    if n_class < 1 or n_features < 1 or declared - {n_class} or (
        _int(head.get("num_tree_per_iteration", str(n_class))) != n_class
    ):
        raise ValueError("inconsistent number of classes or features")
    pos = first.start() if first else end
    for size in (_int(s) for s in head["tree_sizes"].split()):
        block = data[pos : pos + size]
        pos += size
        if size < 0 or pos > end + 1 or not block.startswith(b"Tree=") or b"\n\n" not in block:
            raise ValueError("tree_sizes do not match the trees")
        _check_tree(block.decode().split("\n\n", 1)[0].split("\n")[1:], n_features)


def _check_tree(lines: list[str], n_features: int) -> None:
    if len(lines) > 22 or any("=" not in line for line in lines):
        raise ValueError("malformed tree")  # LightGBM reads at most 22 key=value lines
    kv = dict(line.split("=", 1) for line in lines)
    leaves, n_cat = _int(kv["num_leaves"]), _int(kv["num_cat"])
    linear = _int(kv.get("is_linear", "0")) != 0
    _float(kv.get("shrinkage", "1"))
    # Every number LightGBM will parse, parsed as strictly as LightGBM (it aborts on errors).
    arrays: dict[str, list[Any]] = {
        k: [_int(v) if k in _INTS else _float(v) for v in kv[k].split()]
        for k in (*_INTS, *_FLOATS)
        if k in kv
    }
    if leaves < 1 or n_cat < 0 or len(arrays["leaf_value"]) != leaves:
        raise ValueError("malformed tree")
    if leaves == 1 and not linear:
        return
    if missing := {"left_child", "right_child", "split_feature", "threshold"} - kv.keys():
        raise ValueError(f"tree without {', '.join(sorted(missing))}")
    wrong = [k for k in _INNER if k in kv and len(arrays[k]) != leaves - 1]
    wrong += [k for k in _PER_LEAF if k in kv and len(arrays[k]) != leaves]
    if wrong:
        raise ValueError(f"tree arrays of the wrong length: {', '.join(wrong)}")
    kids = arrays["left_child"] + arrays["right_child"]
    inner, leaf = sorted(k for k in kids if k >= 0), sorted(~k for k in kids if k < 0)
    # Every node but the root has exactly one parent: no cycles, no out-of-range jumps.
    if leaves > 1 and (inner != list(range(1, leaves - 1)) or leaf != list(range(leaves))):
        raise ValueError("tree children do not form a tree")
    used = arrays.get("leaf_features", []) if linear else []
    if any(not 0 <= f < n_features for f in arrays["split_feature"] + used):
        raise ValueError("split on a feature the model does not have")
    counts = arrays.get("num_features", [])
    if linear and (any(c < 0 for c in counts) or len(used) != sum(counts)
                   or len(arrays.get("leaf_coeff", [])) != len(used)):
        raise ValueError("malformed linear tree")
    # A categorical split's threshold is an index into the tree's category lists.
    decisions = arrays.get("decision_type", [0] * (leaves - 1))
    cats = [int(t) for t, d in zip(arrays["threshold"], decisions, strict=True) if d & 1]
    if any(not 0 <= c < n_cat for c in cats):
        raise ValueError("categorical split without its categories")
    if n_cat:
        bounds = arrays["cat_boundaries"]
        if (len(bounds) != n_cat + 1 or bounds[0] != 0 or np.any(np.diff(bounds) < 0)
                or len(arrays["cat_threshold"]) != bounds[-1]):
            raise ValueError("malformed categorical splits")


def _int(text: str) -> int:
    if not _INT_RE.fullmatch(text):
        raise ValueError(f"not an integer: {text[:20]!r}")
    return int(text)


def _float(text: str) -> float:
    if not _FLOAT_RE.fullmatch(text):
        raise ValueError(f"not a number: {text[:20]!r}")
    return float(text)
