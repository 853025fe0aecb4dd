"""What a flavor is: how one framework's models are saved to bytes and loaded back.

A flavor turns a model object into named files (``save``), recognises a model file
made elsewhere (``sniff`` + ``from_file``), and turns stored files back into a
``Predictor`` (``load``). Adding a framework means adding one module with one class.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, ClassVar, Protocol

from modelport.artifacts.bundle import Bundle


class LibraryVersionWarning(UserWarning):
    """A model is loaded with a different major version of a library than it was saved with."""


class Predictor(Protocol):
    """A loaded model, ready to predict on data already checked against its signature."""

    def predict(self, data: Any) -> Any:
        """Predictions for ``data`` (one output per row)."""
        ...


@dataclass(frozen=True)
class TrustPolicy:
    """What the operator allows to be loaded.

    ``trusted`` allows formats that execute code when read (pickle, custom Python);
    ``trusted_types`` extends skops' safe list with fully qualified type names.
    """

    trusted: bool = False
    trusted_types: tuple[str, ...] = ()


@dataclass
class SavedModel:
    """A model as files, ready to be written into a bundle."""

    files: dict[str, bytes]
    meta: dict[str, Any] = field(default_factory=dict)


class Flavor(ABC):
    """One framework's save/load logic."""

    name: ClassVar[str]
    #: Distributions whose versions are recorded with each version and checked at load.
    libraries: ClassVar[tuple[str, ...]] = ()
    #: Loading executes code from the artifact: needs ``TrustPolicy.trusted``.
    runs_code: ClassVar[bool] = False
    #: File name extensions this flavor registers from (``models register NAME FILE``).
    extensions: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def handles(self, model: Any) -> bool:
        """Whether ``model`` is an in-memory object of this framework."""

    @abstractmethod
    def save(self, model: Any) -> SavedModel:
        """The model as files."""

    @abstractmethod
    def load(self, bundle: Bundle, policy: TrustPolicy) -> Predictor:
        """A predictor from the bundle's verified files."""

    def sniff(self, data: bytes) -> bool:
        """Whether raw file content looks like this flavor's format."""
        return False

    def from_file(self, data: bytes, extension: str) -> SavedModel:
        """Wrap a model file made elsewhere; validates its content."""
        raise NotImplementedError

    def validate(self, saved: SavedModel, policy: TrustPolicy) -> Predictor:
        """Load freshly saved files once, in memory, to prove they make a working model."""
        from modelport.artifacts.bundle import write_bundle
        from modelport.artifacts.store import MemoryArtifactStore

        store = MemoryArtifactStore()
        written = write_bundle(store, saved.files, {"flavor": self.name, "flavor_meta": saved.meta})
        return self.load(Bundle(store, written.digest), policy)

    def array_predict(
        self, predictor: Predictor, input_schema: dict[str, Any] | None
    ) -> Callable[[Any], Any] | None:
        """A predict taking a 2-D array in the signature's column order, or None.

        Servers use it to skip building a DataFrame per batch when a flavor knows the
        model computes the same thing from the bare array; they check it against the
        table path on the input example before trusting it.
        """
        return None

    def native(self, predictor: Predictor) -> Any:
        """The framework's own model object behind a predictor."""
        return getattr(predictor, "model", predictor)

    def library_versions(self) -> dict[str, str]:
        """Installed versions of this flavor's libraries (read once per process)."""
        cached: dict[str, str] | None = getattr(self, "_library_versions", None)
        if cached is None:
            # Reading package metadata costs about 0.3 ms per library: too much to repeat
            # on every load, and installed versions do not change under a running process.
            cached = {}
            for dist in self.libraries:
                try:
                    cached[dist] = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    continue
            self._library_versions = cached
        return dict(cached)


def warn_on_major_mismatch(saved: dict[str, str], installed: dict[str, str], what: str) -> None:
    """Warn for each library whose major version differs between save and load."""
    for dist, saved_ver in saved.items():
        now = installed.get(dist)
        if now and _major(now) != _major(saved_ver):
            warnings.warn(
                f"{what} was saved with {dist} {saved_ver} and is loaded with {dist} {now}; "
                "predictions may differ",
                LibraryVersionWarning,
                stacklevel=3,
            )


def _major(version: str) -> str:
    return version.split(".", 1)[0]
