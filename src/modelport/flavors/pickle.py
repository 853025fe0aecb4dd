"""Pickle and joblib files: only for models their owner vouches for.

Unpickling runs arbitrary code, so both registering and loading need an explicit
``trusted=True``; anything a safe flavor can store never comes here.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from modelport.artifacts.bundle import Bundle
from modelport.errors import UnsupportedModelError, UntrustedModelError
from modelport.flavors.base import Flavor, Predictor, SavedModel, TrustPolicy

FILE = "model.pkl"
# joblib writes a plain pickle stream, or one compressed with one of these.
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"]\x00\x00")
_REFUSAL = (
    "pickle and joblib files run arbitrary code when loaded; pass trusted=True "
    "(CLI: --trusted) only if you trust where this file comes from"
)


class PicklePredictor:
    """A model restored from a pickle."""

    def __init__(self, model: Any) -> None:
        if not callable(getattr(model, "predict", None)):
            raise UnsupportedModelError(
                f"the unpickled {type(model).__name__} object has no predict method"
            )
        self.model = model

    def predict(self, data: Any) -> Any:
        """``model.predict(data)``."""
        return self.model.predict(data)


def _unpickle(data: bytes, fmt: str) -> Any:
    if fmt == "joblib":
        import joblib

        return joblib.load(io.BytesIO(data))
    return pickle.loads(data)  # noqa: S301 - only reached with trusted=True


class PickleFlavor(Flavor):
    """Last resort for trusted models no safe flavor can store."""

    name = "pickle"
    libraries = ("joblib", "numpy")
    runs_code = True
    extensions = (".pkl", ".pickle", ".joblib")

    def handles(self, model: Any) -> bool:
        """Anything with ``predict``; chosen only when no safe flavor applies."""
        return callable(getattr(model, "predict", None))

    def save(self, model: Any) -> SavedModel:
        """``pickle.dumps`` with the highest protocol."""
        if not self.handles(model):
            raise UnsupportedModelError(f"{type(model).__name__} has no predict method")
        return SavedModel({FILE: pickle.dumps(model, protocol=5)}, {"format": "pickle"})

    def load(self, bundle: Bundle, policy: TrustPolicy) -> Predictor:
        """Unpickle, but only when the caller says the model is trusted."""
        if not policy.trusted:
            raise UntrustedModelError(f"refusing to load a pickled model: {_REFUSAL}")
        return PicklePredictor(_unpickle(bundle.read(FILE), bundle.meta.get("format", "pickle")))

    def sniff(self, data: bytes) -> bool:
        """A pickle stream (protocol 2+) or a compressed joblib file."""
        if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
            return True
        if data.startswith(_COMPRESSED_MAGIC):
            return True
        # zlib stream header (joblib's default compressor): CMF 0x78 and a valid check sum
        return len(data) >= 2 and data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0

    def from_file(self, data: bytes, extension: str) -> SavedModel:
        """Keep the file as is; its format decides how it is read back."""
        fmt = "joblib" if extension == ".joblib" else "pickle"
        return SavedModel({FILE: data}, {"format": fmt})

