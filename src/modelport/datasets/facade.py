"""``Registry.datasets``: register, read, compare and trace dataset versions.

Where data becomes a stored version: the file (or a frame, as Parquet) and its profile
go into the artifact store as one bundle, content-addressed and digest-checked on
every read like a model's, then the registry records the version in one transaction.
The profile is built here with the same profiler drift uses
(``modelport.monitoring.profiler``) and handed to the registry as JSON: the registry
stores it and never imports monitoring.
"""

from __future__ import annotations

import builtins
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.artifacts.bundle import Bundle, WrittenBundle, write_bundle
from modelport.datasets import reading
from modelport.datasets.diff import DatasetDiff, diff, schema_changes
from modelport.errors import ArtifactIntegrityError
from modelport.registry.datasets import DatasetStore, NewDatasetVersion, Registration
from modelport.registry.entities import Dataset, DatasetLink, DatasetVersion
from modelport.uri import DatasetURI, parse_dataset_uri, parse_uri, validate_name

if TYPE_CHECKING:
    import pandas as pd

    from modelport.client import Registry
    from modelport.monitoring.profile import ReferenceProfile

KIND = "modelport.dataset/1"
PROFILE_FILE = "profile.json"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    """A dataset version written to the artifact store, not yet in the registry."""

    new: NewDatasetVersion
    written: WrittenBundle


def summary(profile: ReferenceProfile) -> dict[str, Any]:
    """The profile as the registry row keeps it: per feature everything but the raw
    sample (bins, categories, counts, missing, min/max/mean/std)."""
    out = profile.to_dict()
    out.pop("predictions", None)
    out.pop("prediction_rows", None)
    for feature in out["features"]:
        feature.pop("sample", None)
        feature.pop("frequencies", None)
    from modelport.monitoring.profile import finite

    return finite(out)


class Datasets:
    """Dataset versions of one registry (``Registry.datasets``)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.store = DatasetStore(registry._sql_store())

    # -- writing ------------------------------------------------------------------------

    def register(self, name: str, data: Any, *, description: str = "",
                 progress: Progress | None = None) -> Registration:
        """Register ``data`` (a CSV/Parquet path, or a DataFrame / array / dict of
        columns) as the next version of dataset ``name``.

        Content already held by a version of ``name`` answers that version
        (``created=False``). A schema that differs from the newest version's is
        registered all the same, with a warning; ``Registration.previous`` is what to
        diff against.
        """
        say = progress or (lambda _msg: None)
        validate_name(name, "dataset name")
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            reading.file_format(path)
            say(f"hashing {path.name}")
            found = self.store.by_data_digest(name, reading.file_digest(path))
            if found is not None:
                return Registration(found, False, None)
        say("profiling")
        prepared = self.prepare(name, data, description=description)
        say("recording")
        try:
            result = self.store.register(prepared.new, self.registry.settings.user)
        except BaseException:
            self.discard(prepared)
            raise
        if not result.created and result.version.artifact_digest != prepared.written.digest:
            self.discard(prepared)  # same content stored before, in another file layout
        if result.created and result.previous is not None:
            changes = schema_changes(result.previous.schema, result.version.schema)
            if changes:
                warnings.warn(f"{result.version.uri} changes the schema of "
                              f"{result.previous.uri}: " + "; ".join(map(str, changes)),
                              UserWarning, stacklevel=2)
        return result

    def prepare(self, name: str, data: Any, *, description: str = "",
                profile: ReferenceProfile | None = None,
                fingerprint: str | None = None) -> Prepared:
        """Read, profile and store ``data``'s bundle; the caller records it (in its own
        transaction) or :meth:`discard` s it. ``profile`` and ``fingerprint`` reuse
        those already computed from the same frame (``log_model`` needs both anyway)."""
        from modelport.datafiles import fingerprint as fingerprint_of

        validate_name(name, "dataset name")
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            fmt = reading.file_format(path)
            raw = reading.read_file(path)
            frame = reading.parse(raw, fmt, path.name)
            source = what = reading.display_name(path)
        else:
            frame = reading.as_frame(data, "the dataset")
            fmt, raw, source, what = "parquet", reading.frame_bytes(frame), "dataframe", \
                "the dataset"
        if profile is None:
            profile = _build_profile(frame, what)
        schema = reading.schema_of(frame)
        fp = fingerprint or fingerprint_of(frame)["fingerprint"]
        data_file = f"data.{fmt}"
        # One bundle pins the data file and its profile; its manifest's digest is the
        # version's artifact digest, as for a model.
        written = write_bundle(self.registry.artifacts, {
            data_file: raw, PROFILE_FILE: profile.to_json()}, {
            "kind": KIND, "data_file": data_file, "data_format": fmt, "schema": schema,
            "rows": len(frame), "fingerprint": fp})
        new = NewDatasetVersion(
            name=name, artifact_digest=written.digest, artifact_size=written.size,
            data_digest=written.files[data_file], fingerprint=fp, format=fmt, rows=len(frame),
            schema=schema, profile=summary(profile), source=source, description=description)
        return Prepared(new, written)

    def discard(self, prepared: Prepared, keep: frozenset[str] = frozenset()) -> None:
        """Remove the blobs :meth:`prepare` created, unless a version references their
        bundle; ``keep``: blobs another bundle written meanwhile may share."""
        from modelport.registration import safe_in_use as _safe_in_use

        if not _safe_in_use(self.registry.store, prepared.written.digest):
            for digest in prepared.written.created:
                if digest not in keep:
                    self.registry.artifacts.delete(digest)

    # -- reading ------------------------------------------------------------------------

    def get(self, uri: str | DatasetURI | DatasetVersion) -> DatasetVersion:
        """The version a URI points to: ``datasets:/NAME/VERSION``, ``NAME/VERSION`` or
        ``NAME`` (the newest)."""
        if isinstance(uri, DatasetVersion):
            return uri
        return self.store.get(uri)

    def list(self) -> builtins.list[Dataset]:
        """Every dataset, by name."""
        return self.store.list()

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        """Every version of ``name``, newest first."""
        return self.store.versions(name)

    def load(self, uri: str | DatasetURI | DatasetVersion) -> pd.DataFrame:
        """The version's data as a DataFrame (every byte digest-checked on the way)."""
        version = self.get(uri)
        bundle = self._bundle(version)
        name = str(bundle.manifest.get("data_file", f"data.{version.format}"))
        return reading.parse(bundle.read(name), version.format, version.uri)

    def profile(self, uri: str | DatasetURI | DatasetVersion) -> ReferenceProfile:
        """The version's full profile (with its raw samples), from its bundle."""
        from modelport.monitoring.profile import ReferenceProfile

        return ReferenceProfile.from_json(self._bundle(self.get(uri)).read(PROFILE_FILE))

    def verify(self, uri: str | DatasetURI | DatasetVersion) -> int:
        """Re-read every file of the version's bundle, checking digests; the byte count."""
        return self._bundle(self.get(uri)).verify()

    def diff(self, old: str | DatasetVersion, new: str | DatasetVersion) -> DatasetDiff:
        """Schema and per-feature profile changes from ``old`` to ``new``."""
        return diff(self.get(old), self.get(new))

    def models(self, uri: str | DatasetURI | DatasetVersion, *,
               role: str | None = None) -> builtins.list[DatasetLink]:
        """The live model versions linked to a dataset version (all versions of the
        dataset for a bare ``NAME``), oldest link first."""
        if isinstance(uri, DatasetVersion):
            return self.store.links_of_dataset(uri.name, uri.version, role)
        parsed = uri if isinstance(uri, DatasetURI) else parse_dataset_uri(uri)
        return self.store.links_of_dataset(parsed.name, parsed.version, role)

    def of_model(self, uri: str) -> builtins.list[DatasetLink]:
        """The dataset versions a model version was trained or evaluated on."""
        version = self.registry.get(parse_uri(uri))
        return self.store.links_of_model(version.name, version.version)

    def _bundle(self, version: DatasetVersion) -> Bundle:
        bundle = Bundle(self.registry.artifacts, version.artifact_digest)
        if bundle.manifest.get("kind") != KIND:
            raise ArtifactIntegrityError(f"{version.uri}: artifact {version.artifact_digest} "
                                         "is not a dataset bundle")
        return bundle


def _build_profile(frame: pd.DataFrame, what: str) -> ReferenceProfile:
    from modelport.errors import InvalidInputError
    from modelport.monitoring.profiler import build_reference

    try:
        return build_reference(frame)
    except InvalidInputError as exc:  # its messages speak of training_data
        raise InvalidInputError(f"cannot profile {what}: "
                                + str(exc).replace("training_data ", "")) from exc


__all__ = ["KIND", "PROFILE_FILE", "Datasets", "Prepared", "summary"]
