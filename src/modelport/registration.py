"""Checks and calls ``Registry`` makes while registering a version: metric, tag and
parameter validation, the model's predictions on its example and training rows, and
whether a blob is still referenced."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

from modelport.errors import InvalidInputError, ModelportError
from modelport.flavors import Flavor, SavedModel, TrustPolicy
from modelport.registry.store import RegistryStore


def predicting(call: Callable[[], Any], what: str) -> Any:
    """``call()``, any failure of the user's model turned into InvalidInputError saying
    it cannot predict on ``what``."""
    try:
        return call()
    except ModelportError:
        raise
    except Exception as exc:  # the user's model: any failure means bad data for it
        raise InvalidInputError(f"the model cannot predict on {what}: {exc}") from exc


def safe_in_use(store: RegistryStore, digest: str) -> bool:
    """Whether a version still references ``digest`` (True when the store cannot say:
    keeping an orphan blob is better than deleting a used one)."""
    try:
        return store.digest_in_use(digest)
    except Exception:  # the database may be what failed; keep the blobs rather than guess
        return True


def predict_example(model: Any, flavor: Flavor, saved: SavedModel, example: Any,
                    what: str = "input_example") -> Any:
    """The model's output on its input example (to infer the output schema) or on
    training rows (to profile its outputs)."""
    def call() -> Any:
        if flavor.name not in ("sklearn", "pickle"):
            # A PythonModel may need load_context (its artifacts), an ONNX graph has no
            # predict and a raw XGBoost Booster wants a DMatrix: ask the reloaded model,
            # which is also what serving will run. The caller's own object: trust is moot.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return flavor.validate(saved, TrustPolicy(trusted=True)).predict(example)
        return model.predict(example)
    return predicting(call, what)


def check_metrics(metrics: dict[str, float] | None) -> dict[str, float]:
    """Metric names to finite floats; InvalidInputError naming the bad one."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"metric names must be non-empty strings, got {key!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"metric {key!r} is not a number: {value!r}") from None
        if not math.isfinite(number):
            raise InvalidInputError(f"metric {key!r} is not finite: {value!r}")
        out[key] = number
    return out


def check_tags(tags: dict[str, str] | None) -> dict[str, str]:
    """Tag names of 1-250 characters to text values; InvalidInputError otherwise."""
    out = {}
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key or len(key) > 250:
            raise InvalidInputError(f"tag names must be strings of 1-250 characters, got {key!r}")
        out[key] = str(value)
    return out


def jsonable(value: dict[str, Any], what: str) -> dict[str, Any]:
    """``value`` as plain JSON types (numpy numbers included); InvalidInputError if it
    cannot be one."""
    import orjson

    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY
                                         | orjson.OPT_NON_STR_KEYS))
    except TypeError as exc:
        raise InvalidInputError(f"{what} must be JSON-serialisable: {exc}") from exc


__all__ = ["check_metrics", "check_tags", "jsonable", "predict_example", "predicting",
           "safe_in_use"]
