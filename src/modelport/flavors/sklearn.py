"""scikit-learn models, stored with skops (no pickle).

skops refuses types outside its safe list unless they are named as trusted. That
list comes from the operator's configuration (``TrustPolicy.trusted_types``), never
from the artifact: a model file must not be able to vouch for itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from modelport.artifacts.bundle import Bundle
from modelport.errors import UnsupportedModelError, UntrustedModelError
from modelport.flavors.base import Flavor, Predictor, SavedModel, TrustPolicy

FILE = "model.skops"

# sklearn's own Cython/data-holder classes that skops flags by default but that hold
# only arrays: trusted out of the box so tree ensembles and KNN load without ceremony.
SKLEARN_SAFE_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)


class SklearnPredictor:
    """A loaded scikit-learn estimator."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, data: Any) -> Any:
        """``model.predict(data)``."""
        return self.model.predict(data)


def untrusted_types(data: bytes) -> list[str]:
    """Types in a skops file that skops would refuse without being told to trust them."""
    import skops.io as sio

    try:
        return list(sio.get_untrusted_types(data=data))
    except Exception as exc:  # skops raises a variety of zip/JSON errors on bad files
        raise UnsupportedModelError(f"not a readable skops file: {exc}") from exc


def load_skops(data: bytes, policy: TrustPolicy, what: str) -> Any:
    """Load skops bytes trusting the built-in safe list plus the operator's types only."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    allowed = sorted({*SKLEARN_SAFE_TYPES, *policy.trusted_types})
    try:
        # One parse: skops itself refuses anything outside ``allowed``; the list of
        # offending types is computed only on the error path.
        return sio.loads(data, trusted=allowed)
    except UntrustedTypesFoundException:
        refused = sorted(t for t in untrusted_types(data) if t not in allowed)
        raise UntrustedModelError(
            f"{what} contains types that are not trusted: {', '.join(refused)}. "
            "If you trust them, add them to trusted_types in $MODELPORT_HOME/config.toml "
            "or MODELPORT_TRUSTED_TYPES (comma-separated)",
            untrusted=refused,
        ) from None
    except Exception as exc:  # corrupt zip, bad schema: skops has no common base error
        raise UnsupportedModelError(f"{what} is not a readable skops file: {exc}") from exc


class SklearnFlavor(Flavor):
    """scikit-learn estimators and pipelines via skops."""

    name = "sklearn"
    libraries = ("scikit-learn", "skops", "numpy")
    extensions = (".skops",)

    def handles(self, model: Any) -> bool:
        """Any scikit-learn ``BaseEstimator``."""
        try:
            from sklearn.base import BaseEstimator
        except ImportError:
            return False
        return isinstance(model, BaseEstimator)

    def save(self, model: Any) -> SavedModel:
        """Dump with ``skops.io.dumps``."""
        import skops.io as sio

        data = sio.dumps(model)
        return SavedModel({FILE: data}, {"class": _qualname(model)})

    def load(self, bundle: Bundle, policy: TrustPolicy) -> Predictor:
        """Load with skops, trusting only what the policy allows."""
        return SklearnPredictor(load_skops(bundle.read(FILE), policy, "the model"))

    def array_predict(
        self, predictor: Predictor, input_schema: dict[str, Any] | None
    ) -> Callable[[Any], Any] | None:
        """For all-float table signatures: predict on the bare array.

        scikit-learn uses a DataFrame's column names only to check them (except column
        selection by name, which the server's equivalence check on the input example
        catches), and its DataFrame path costs several times the arithmetic for small
        batches. The feature-name warning a bare array triggers is silenced here. Linear
        classifiers and serial random forests skip scikit-learn's per-call validation
        (``sklearn_lean``): the server has validated the batch already; for float64
        tensor signatures that lean predict is the only fast path offered.
        """
        from modelport.flavors.sklearn_lean import lean_predict

        if (input_schema and input_schema.get("type") == "tensor"
                and input_schema.get("dtype") == "float64"
                and len(input_schema.get("shape") or []) == 2):
            native = self.native(predictor)
            return lean_predict(native, native.predict)
        if not input_schema or input_schema.get("type") != "dataframe":
            return None
        dtypes = {c["dtype"] for c in input_schema["columns"]}
        if len(dtypes) != 1 or not next(iter(dtypes)).startswith("float"):
            return None
        model = self.native(predictor)

        def predict(array: Any) -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return model.predict(array)

        return lean_predict(model, predict) or predict

    def sniff(self, data: bytes) -> bool:
        """A zip archive with skops' ``schema.json``."""
        if not data.startswith(b"PK\x03\x04"):
            return False
        import io
        import zipfile

        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return "schema.json" in zf.namelist()
        except zipfile.BadZipFile:
            return False

    def from_file(self, data: bytes, extension: str) -> SavedModel:
        """A ``.skops`` file, kept byte for byte (the caller loads it once to validate it)."""
        return SavedModel({FILE: data}, {"class": "unknown"})


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
