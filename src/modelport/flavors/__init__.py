"""Flavors: one module per framework, chosen by the model's type or a file's content.

Flavor modules are imported on first use so that ``import modelport`` stays fast and
optional frameworks (XGBoost, LightGBM, ONNX, PMML) are needed only by those who use them.
"""

from __future__ import annotations

import importlib
from typing import Any

from modelport.errors import UnsupportedModelError
from modelport.flavors.base import (
    Flavor,
    LibraryVersionWarning,
    Predictor,
    SavedModel,
    TrustPolicy,
)

# Order matters: XGBoost's and LightGBM's scikit-learn wrappers are also sklearn
# estimators, and must get their native (pickle-free) formats first.
_FLAVORS: dict[str, str] = {
    "python": "modelport.flavors.python_model:PythonModelFlavor",
    "xgboost": "modelport.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "modelport.flavors.lightgbm:LightGBMFlavor",
    "onnx": "modelport.flavors.onnx:ONNXFlavor",
    "pmml": "modelport.flavors.pmml:PMMLFlavor",
    "sklearn": "modelport.flavors.sklearn:SklearnFlavor",
    "pickle": "modelport.flavors.pickle:PickleFlavor",
}
_cache: dict[str, Flavor] = {}


def flavor_names() -> list[str]:
    """Names of all known flavors."""
    return list(_FLAVORS)


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``."""
    if name not in _FLAVORS:
        raise UnsupportedModelError(
            f"unknown flavor {name!r}; known flavors: {', '.join(_FLAVORS)}"
        )
    if name not in _cache:
        module_name, _, cls_name = _FLAVORS[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UnsupportedModelError(
                f"the {name} flavor needs a library that is not installed ({exc.name}); "
                f"install modelport[{name}]"
            ) from exc
        _cache[name] = getattr(module, cls_name)()
    return _cache[name]


def _available() -> list[Flavor]:
    out = []
    for name in _FLAVORS:
        try:
            out.append(get_flavor(name))
        except UnsupportedModelError:
            continue
    return out


def flavor_for_model(model: Any, *, trusted: bool = False) -> Flavor:
    """The safest flavor that can store ``model``; pickle only when ``trusted``."""
    for flavor in _available():
        if flavor.name != "pickle" and flavor.handles(model):
            return flavor
    if trusted:
        return get_flavor("pickle")
    raise UnsupportedModelError(
        f"no safe format stores a {type(model).__module__}.{type(model).__qualname__}; "
        "wrap it in a modelport.PythonModel, or pass trusted=True to store it as a pickle "
        "(pickles run code when loaded)"
    )


def flavor_for_file(data: bytes, extension: str) -> Flavor:
    """The flavor whose format matches a file's extension, checked against its content."""
    ext = extension.lower()
    owners = [f for f in _available() if ext in f.extensions]
    if not owners:
        known = sorted({e for f in _available() for e in f.extensions})
        raise UnsupportedModelError(
            f"cannot register a {ext or 'extension-less'} file; supported: {', '.join(known)}"
        )
    for flavor in owners:
        if flavor.sniff(data):
            return flavor
    actual = next((f.name for f in _available() if f.sniff(data)), None)
    raise UnsupportedModelError(
        f"the file's content does not match its extension {ext}"
        + (f": it looks like a {actual} model" if actual else ": it is no known model format")
    )


__all__ = [
    "Flavor",
    "LibraryVersionWarning",
    "Predictor",
    "SavedModel",
    "TrustPolicy",
    "flavor_for_file",
    "flavor_for_model",
    "flavor_names",
    "get_flavor",
]
