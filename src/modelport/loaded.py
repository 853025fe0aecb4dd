"""A registered version loaded for prediction, and what verifying one reports.

``LoadedModel`` is what ``Registry.load_model`` returns: the flavor's predictor behind
the version's signature check, plus what the version's bundle stores beside the model
(its input example and training profile).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.artifacts.bundle import Bundle
from modelport.flavors import Flavor
from modelport.flavors.base import Predictor
from modelport.registry.entities import ModelVersion

if TYPE_CHECKING:
    from modelport.monitoring.profile import ReferenceProfile

EXAMPLE_FILE = "input_example.json"
PROFILE_FILE = "reference_profile.json"


class LoadedModel:
    """A version loaded for prediction: checks input against the signature, then predicts."""

    def __init__(self, version: ModelVersion, flavor: Flavor, predictor: Predictor,
                 bundle: Bundle) -> None:
        self.version = version
        self.flavor = flavor
        self.predictor = predictor
        self._bundle = bundle
        sig = version.signature or {}
        self._input_schema = sig.get("inputs")

    def __repr__(self) -> str:
        return f"<LoadedModel {self.version.uri} flavor={self.flavor.name}>"

    @property
    def signature(self) -> dict[str, Any] | None:
        """The signature recorded at registration, or None."""
        return self.version.signature

    @property
    def native(self) -> Any:
        """The framework's own model object (estimator, booster, session, ...)."""
        return self.flavor.native(self.predictor)

    @property
    def input_example(self) -> Any:
        """The input example stored with the version, or None."""
        if EXAMPLE_FILE not in self._bundle.manifest["files"]:
            return None
        from modelport.datafiles import example_from_json

        return example_from_json(self._bundle.read(EXAMPLE_FILE))

    @functools.cached_property
    def reference_profile(self) -> ReferenceProfile | None:
        """The profile of the training data (and of the model's outputs on it) stored at
        registration with ``training_data=``, or None."""
        return read_profile(self._bundle)

    def validate(self, data: Any) -> Any:
        """``data`` checked and converted to the signature's layout."""
        from modelport.signature import enforce

        return enforce(self._input_schema, data)

    def predict(self, data: Any) -> Any:
        """Predictions for ``data`` after checking it against the signature."""
        return self.predictor.predict(self.validate(data))


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of re-reading a version's artifact."""

    uri: str
    digest: str
    files: int
    bytes: int
    signed_by: str | None = None  # the key id in the version's signature record
    signature: str = "unsigned"  # "verified" (by a trusted key), "unchecked" or "unsigned"


def read_profile(bundle: Bundle) -> ReferenceProfile | None:
    """The training profile stored in ``bundle``, or None."""
    if PROFILE_FILE not in bundle.manifest["files"]:
        return None
    from modelport.monitoring.profile import ReferenceProfile

    return ReferenceProfile.from_json(bundle.read(PROFILE_FILE))


__all__ = ["EXAMPLE_FILE", "PROFILE_FILE", "LoadedModel", "VerifyReport", "read_profile"]
