"""Shared by the flavor tests: a SavedModel as an in-memory bundle, and a save/load trip."""

from __future__ import annotations

from typing import Any

from modelport.artifacts import Bundle, MemoryArtifactStore, write_bundle
from modelport.flavors import Flavor, SavedModel, TrustPolicy


def bundle_of(flavor: Flavor, saved: SavedModel,
              libraries: dict[str, str] | None = None) -> Bundle:
    """``saved`` written to a fresh in-memory store, opened as a bundle."""
    store = MemoryArtifactStore()
    written = write_bundle(store, saved.files, {
        "flavor": flavor.name,
        "flavor_meta": saved.meta,
        "libraries": flavor.library_versions() if libraries is None else libraries,
    })
    return Bundle(store, written.digest)


def round_trip(flavor: Flavor, model: Any) -> Any:
    """Save ``model`` with ``flavor`` and load it back."""
    return flavor.load(bundle_of(flavor, flavor.save(model)), TrustPolicy())
