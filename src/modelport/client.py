"""``Registry``: the public face of the registry, the artifact store and the flavors.

It is where a model object becomes a stored, content-addressed version (``log_model``)
and where a version becomes a model object again (``load_model``). The registry store
itself knows nothing of flavors or artifacts; this module ties them together.
"""

from __future__ import annotations

import builtins
import functools
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.artifacts.bundle import Bundle, WrittenBundle, write_bundle
from modelport.artifacts.store import ArtifactStore, LocalArtifactStore
from modelport.config import ENCRYPTION_KEY_ENV, SIGNING_KEY_ENV, VERIFY_KEYS_ENV, Settings
from modelport.errors import (
    ArtifactIntegrityError,
    ConfigurationError,
    InvalidInputError,
    UntrustedModelError,
)
from modelport.flavors import Flavor, SavedModel, TrustPolicy, flavor_for_file, flavor_for_model
from modelport.flavors import get_flavor as _get_flavor
from modelport.flavors.base import warn_on_major_mismatch
from modelport.loaded import EXAMPLE_FILE, PROFILE_FILE, LoadedModel, VerifyReport, read_profile
from modelport.registration import (
    check_metrics,
    check_tags,
    jsonable,
    predict_example,
    predicting,
    safe_in_use,
)
from modelport.registry.entities import AliasEvent, ModelVersion, RegisteredModel
from modelport.registry.store import NewVersion, RegistryStore, SqlRegistryStore
from modelport.uri import ModelURI, parse_uri, validate_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelport.artifacts.s3 import S3ArtifactStore
    from modelport.artifacts.signing import KeySource, PublicKeySource, SigningKey, VerifyKeys
    from modelport.datasets import Datasets, Prepared
    from modelport.monitoring.profile import ReferenceProfile
    from modelport.registry.alerts import AlertStore
    from modelport.registry.audit import AuditStore
    from modelport.registry.datasets import DatasetRef
    from modelport.registry.deployments import DeploymentStore
    from modelport.registry.records import RecordStore
    from modelport.registry.retrains import RetrainStore
    from modelport.registry.tokens import TokenStore

MAX_FILE_BYTES = 4 << 30  # a model file above 4 GiB is almost surely a mistake


class Registry:
    """Models, versions and aliases in a registry database plus an artifact store.

    ``Registry()`` opens the embedded default under ``MODELPORT_HOME`` (SQLite and a
    local folder); pass ``database_url`` (e.g. PostgreSQL) or ``artifacts`` to change.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        database_url: str | None = None,
        artifacts: str | None = None,
        settings: Settings | None = None,
        store: RegistryStore | None = None,
        artifact_store: ArtifactStore | None = None,
    ) -> None:
        self.settings = settings or Settings.load(home, database_url, artifacts)
        self.store: RegistryStore = store or SqlRegistryStore.from_url(self.settings.database_url)
        self.artifacts: ArtifactStore = artifact_store or _artifact_store(
            self.settings.artifacts, self.settings.home)

    @functools.cached_property
    def deployments(self) -> DeploymentStore:
        """Deployments (desired state of each endpoint), their history, and rollouts."""
        from modelport.registry.deployments import DeploymentStore

        return DeploymentStore(self._sql_store())

    @functools.cached_property
    def records(self) -> RecordStore:
        """Gate results, pipeline runs, servers' traffic counters and leases."""
        from modelport.registry.records import RecordStore

        return RecordStore(self._sql_store())

    @functools.cached_property
    def alerts(self) -> AlertStore:
        """The monitoring rules' open and resolved alerts."""
        from modelport.registry.alerts import AlertStore

        return AlertStore(self._sql_store())

    @functools.cached_property
    def audit(self) -> AuditStore:
        """The hash-chained record of every mutation: list, verify, what served when."""
        from modelport.registry.audit import AuditStore

        return AuditStore(self._sql_store())

    @functools.cached_property
    def tokens(self) -> TokenStore:
        """API tokens: create (shown once), list, verify, revoke."""
        from modelport.registry.tokens import TokenStore

        return TokenStore(self._sql_store())

    @functools.cached_property
    def datasets(self) -> Datasets:
        """Dataset versions: register (CSV, Parquet, frames), list, show, diff, load, and
        which model versions used them."""
        from modelport.datasets import Datasets

        return Datasets(self)

    @functools.cached_property
    def retrains(self) -> RetrainStore:
        """Retraining triggers, skips and outcomes (kept in the audit log)."""
        from modelport.registry.retrains import RetrainStore

        return RetrainStore(self._sql_store())

    def _sql_store(self) -> SqlRegistryStore:
        if not isinstance(self.store, SqlRegistryStore):
            raise ConfigurationError("deployments and records need the SQL registry store")
        return self.store

    def close(self) -> None:
        """Release database connections."""
        close = getattr(self.store, "close", None)
        if close:
            close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        input_example: Any = None,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        training_data: Any = None,
        eval_data: Any = None,
        trusted: bool = False,
        description: str = "",
        artifacts: dict[str, str] | None = None,
        sign_key: KeySource | None = None,
    ) -> ModelVersion:
        """Store ``model`` as the next version of ``name`` and return that version.

        ``training_data`` (a DataFrame or array, a dataset URI ``datasets:/NAME/VERSION``
        or a ``DatasetVersion``) is fingerprinted and profiled for drift, and linked as
        the version's training dataset: data given as a frame is registered as the next
        version of dataset ``<name>-training`` (``eval_data``: ``<name>-eval``), in the
        same transaction as the model version. ``sign_key`` (a PEM path or text, or an
        Ed25519 key; by default ``$MODELPORT_SIGNING_KEY`` if set) signs the version as
        it is registered."""
        from modelport.signature import infer_signature

        validate_name(name)
        signer = _signing_key(sign_key)  # a bad key fails before anything is written
        flavor = flavor_for_model(model, trusted=trusted)
        if artifacts and flavor.name != "python":
            raise InvalidInputError("artifacts= is only for modelport.PythonModel models")
        saved = flavor.save(model, artifacts) if artifacts else flavor.save(model)  # type: ignore[call-arg]
        signature = None
        if input_example is not None:
            output = predict_example(model, flavor, saved, input_example)
            signature = infer_signature(input_example, output)
        return self._register_linked(
            name, flavor, saved,
            lambda rows: predict_example(model, flavor, saved, rows, "training_data"),
            training_data, eval_data, signature=signature, input_example=input_example,
            metrics=metrics, params=params, tags=tags, description=description,
            sign_key=signer)

    def _register_linked(self, name: str, flavor: Flavor, saved: SavedModel,
                         predict: Any, training_data: Any, eval_data: Any,
                         **register: Any) -> ModelVersion:
        """``_register`` with the training data fingerprinted and profiled (``predict``
        gives the model's outputs for the profile) and both data sets linked as
        datasets, in the version's transaction; dataset bundles left by a failure (or
        already held by an existing version) are removed."""
        data_print, extra = None, None
        refs: list[DatasetRef] = []
        prepared: list[Prepared] = []
        try:
            if training_data is not None:
                data_print, profile = self._training_data(
                    name, training_data, refs, prepared, predict)
                # Into the same bundle write as the model: one digest pins both.
                extra = {PROFILE_FILE: profile.to_json()}
            if eval_data is not None:
                self._link_data(name, "eval", eval_data, refs, prepared)
            version = self._register(
                name, flavor, saved, training_data=data_print, extra_files=extra,
                datasets=tuple(refs), **register)
        except BaseException:
            for p in prepared:  # the dataset bundles written for this version
                self.datasets.discard(p)
            raise
        if prepared:
            # A frame whose content a dataset version already held: drop the bundle
            # written for it, sparing any blob the new model bundle shares.
            bundle = Bundle(self.artifacts, version.artifact_digest)
            keep = frozenset({version.artifact_digest,
                              *(f["digest"] for f in bundle.manifest["files"].values())})
            for p in prepared:
                self.datasets.discard(p, keep)
        return version

    def _training_data(self, name: str, data: Any, refs: builtins.list[DatasetRef],
                       prepared: builtins.list[Prepared], predict: Any,
                       ) -> tuple[dict[str, Any], ReferenceProfile]:
        """The fingerprint and reference profile of ``training_data``, its dataset link
        appended to ``refs`` (and its bundle to ``prepared`` if it is a new one)."""
        from dataclasses import replace

        from modelport.datafiles import fingerprint
        from modelport.monitoring.profiler import build_reference

        linked = _dataset_version(self, data)
        if linked is not None:
            frame = self.datasets.load(linked)
            profile = build_reference(frame, predict)
            self._link_data(name, "training", linked, refs, prepared)
            return ({"fingerprint": linked.fingerprint, "rows": linked.rows,
                     "columns": linked.columns, "kind": "dataframe"}, profile)
        data_print = fingerprint(data)
        profile = build_reference(data, predict)
        # The dataset keeps the features' profile only: the outputs are the model's. A
        # frame's fingerprint is the dataset's too (an array's is of another layout).
        self._link_data(name, "training", data, refs, prepared,
                        replace(profile, predictions=None, prediction_rows=0, note=""),
                        data_print["fingerprint"] if data_print["kind"] == "dataframe"
                        else None)
        return data_print, profile

    def _link_data(self, name: str, role: str, data: Any, refs: builtins.list[DatasetRef],
                   prepared: builtins.list[Prepared], profile: ReferenceProfile | None = None,
                   fingerprint: str | None = None) -> None:
        """Append the link of ``data`` as ``role`` to ``refs``: an existing dataset
        version, or a frame stored now as the next version of ``<name>-<role>``."""
        from modelport.registry.datasets import DatasetRef
        from modelport.uri import DatasetURI

        if not isinstance(self.store, SqlRegistryStore):
            return  # another backend keeps no datasets: the fingerprint is all there is
        linked = _dataset_version(self, data)
        if linked is not None:
            refs.append(DatasetRef(role, uri=DatasetURI(linked.name, linked.version)))
            return
        dataset = f"{name}-{role}"
        if len(dataset) > 128:
            raise InvalidInputError(
                f"{role} data of {name!r} would be dataset {dataset[:40]!r}..., longer than "
                "128 characters: register it first (registry.datasets.register(NAME, data)) "
                f"and pass that version as {role}_data")
        made = self.datasets.prepare(dataset, data, profile=profile, fingerprint=fingerprint)
        prepared.append(made)
        refs.append(DatasetRef(role, new=made.new))

    def register_file(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        trusted: bool = False,
        input_example: Any = None,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        description: str = "",
        sign_key: KeySource | None = None,
        training_data: Any = None,
        eval_data: Any = None,
    ) -> ModelVersion:
        """Register a model file made elsewhere, detecting its flavor from the content
        (signed with ``sign_key``, ``training_data`` and ``eval_data`` profiled and
        linked, as in ``log_model``)."""
        from modelport.signature import infer_signature

        validate_name(name)
        signer = _signing_key(sign_key)
        p = Path(path)
        if not p.is_file():
            raise InvalidInputError(f"model file not found: {p}")
        if p.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInputError(f"{p.name} is larger than {MAX_FILE_BYTES >> 30} GiB")
        data = p.read_bytes()
        flavor = flavor_for_file(data, p.suffix)
        if flavor.runs_code and not trusted:
            raise UntrustedModelError(
                f"{p.name} is a {flavor.name} file: loading it runs arbitrary code. "
                "Register it with --trusted (trusted=True) only if you trust its source"
            )
        saved = flavor.from_file(data, p.suffix.lower())
        predictor = flavor.validate(saved, self._policy(trusted))
        signature = None
        if input_example is not None:
            signature = infer_signature(input_example, predictor.predict(input_example))
        tags = {**(tags or {}), "source_file": p.name}
        if training_data is None and eval_data is None:
            return self._register(
                name, flavor, saved, signature=signature, input_example=input_example,
                metrics=metrics, params=params, tags=tags, description=description,
                training_data=None, sign_key=signer)

        return self._register_linked(
            name, flavor, saved,
            lambda rows: predicting(lambda: predictor.predict(rows), "training_data"),
            training_data, eval_data, signature=signature,
            input_example=input_example, metrics=metrics, params=params, tags=tags,
            description=description, sign_key=signer)

    def _register(
        self, name: str, flavor: Flavor, saved: SavedModel, *, signature: dict[str, Any] | None,
        input_example: Any, metrics: dict[str, float] | None, params: dict[str, Any] | None,
        tags: dict[str, str] | None, description: str, training_data: dict[str, Any] | None,
        extra_files: dict[str, bytes] | None = None, sign_key: SigningKey | None = None,
        datasets: tuple[DatasetRef, ...] = (),
    ) -> ModelVersion:
        files = {**saved.files, **(extra_files or {})}
        if input_example is not None:
            from modelport.datafiles import example_to_json

            files[EXAMPLE_FILE] = example_to_json(input_example)
        libraries = flavor.library_versions()
        written: WrittenBundle = write_bundle(
            self.artifacts, files,
            {"flavor": flavor.name, "flavor_meta": saved.meta, "libraries": libraries,
             "signature": signature},
        )
        new = NewVersion(
            flavor=flavor.name,
            artifact_digest=written.digest,
            artifact_size=written.size,
            created_by=self.settings.user,
            signature=signature,
            metrics=check_metrics(metrics),
            params=jsonable(params or {}, "params"),
            tags=check_tags(tags),
            training_data=training_data,
            environment={"python": platform.python_version(), "libraries": libraries,
                         "platform": platform.platform(terse=True)},
            description=description,
            datasets=datasets,
        )
        user = self.settings.user
        try:
            if sign_key is None:
                return self.store.create_version(name, new)
            return self.store.create_version(
                name, new, signer=lambda n: sign_key.sign(name, n, written.digest, user))
        except BaseException:
            # Leave no orphan: remove blobs this call created, unless a concurrent
            # registration of identical content has referenced them meanwhile.
            if not safe_in_use(self.store, written.digest):
                for digest in written.created:
                    self.artifacts.delete(digest)
            raise

    # -- reading ------------------------------------------------------------------------

    def get(self, uri: str | ModelURI) -> ModelVersion:
        """The version a URI points to (``iris/3``, ``iris@champion``, ``models:/iris/3``)."""
        return self.store.resolve(uri if isinstance(uri, ModelURI) else parse_uri(uri))

    def get_model(self, name: str) -> RegisteredModel:
        """The registered model ``name``."""
        return self.store.get_model(name)

    def list(
        self, name: str | None = None, *, include_deleted: bool = False
    ) -> builtins.list[Any]:
        """All models, or all versions of model ``name`` (newest first)."""
        if name is None:
            return self.store.list_models(include_deleted)
        return self.store.list_versions(name, include_deleted)

    def history(self, name: str, alias: str | None = None) -> builtins.list[AliasEvent]:
        """Every alias move of ``name`` (or of one alias), oldest first."""
        return self.store.alias_history(name, alias)

    def load_model(
        self, uri: str | ModelURI, *, trusted: bool = False,
        require_signature_keys: VerifyKeys | Sequence[PublicKeySource] | None = None,
    ) -> LoadedModel:
        """Load a version for prediction; its artifact is digest-checked on the way.

        With ``require_signature_keys`` (public key paths or a ``VerifyKeys``) the
        version must be signed by one of them, checked before any of its bytes are read
        (UntrustedModelError saying why otherwise)."""
        version = self.store.resolve(uri if isinstance(uri, ModelURI) else parse_uri(uri),
                                     with_aliases=False)
        if require_signature_keys is not None:
            _check_signature(version, require_signature_keys)
        bundle = Bundle(self.artifacts, version.artifact_digest)
        if bundle.flavor != version.flavor:
            raise ArtifactIntegrityError(
                f"{version.uri}: the registry says flavor {version.flavor!r} but the artifact "
                f"says {bundle.flavor!r}"
            )
        flavor = _get_flavor(version.flavor)
        warn_on_major_mismatch(bundle.manifest.get("libraries") or {},
                               flavor.library_versions(), version.uri)
        predictor = flavor.load(bundle, self._policy(trusted))
        return LoadedModel(version, flavor, predictor, bundle)

    def verify(self, uri: str | ModelURI, *,
               keys: VerifyKeys | Sequence[PublicKeySource] | None = None) -> VerifyReport:
        """Re-read every file of a version's artifact, checking each digest, and check its
        signature against ``keys`` (default ``$MODELPORT_VERIFY_KEYS``; with neither,
        the signature is reported "unchecked")."""
        version = self.get(uri)
        if keys is None and os.environ.get(VERIFY_KEYS_ENV, "").strip():
            from modelport.artifacts.signing import load_verify_keys

            keys = load_verify_keys()
        if keys is not None:  # before reading the bytes, as a server does
            _check_signature(version, keys)
        bundle = Bundle(self.artifacts, version.artifact_digest)
        size = bundle.verify()
        signed_by = (version.signing or {}).get("key_id")
        status = "verified" if keys is not None else "unchecked" if signed_by else "unsigned"
        return VerifyReport(version.uri, version.artifact_digest, len(bundle.names()), size,
                            signed_by, status)

    def sign(self, uri: str | ModelURI, key: KeySource | None = None, *,
             replace: bool = False) -> ModelVersion:
        """Sign an existing version with ``key`` (default ``$MODELPORT_SIGNING_KEY``),
        audited as ``version.sign``. Its artifact is verified first: a signature vouches
        for intact bytes."""
        from modelport.artifacts.signing import load_signing_key
        from modelport.registry.signatures import set_signing

        signer = load_signing_key(key)
        version = self.get(uri)
        Bundle(self.artifacts, version.artifact_digest).verify()
        record = signer.sign(version.name, version.version, version.artifact_digest,
                             self.settings.user)
        return set_signing(self._sql_store(), version.name, version.version, record,
                           self.settings.user, replace=replace)

    def reference_profile(self, uri: str | ModelURI) -> ReferenceProfile | None:
        """The reference profile of a version (None if it was registered without
        ``training_data``); reads the bundle only, the model is not loaded."""
        version = self.get(uri)
        return read_profile(Bundle(self.artifacts, version.artifact_digest))

    # -- aliases and deletes ------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int, *, reason: str = "") -> AliasEvent:
        """Point ``alias`` of ``name`` at ``version`` (recorded with who and why)."""
        return self.store.set_alias(name, alias, version, self.settings.user, reason)

    def delete_alias(self, name: str, alias: str, *, reason: str = "") -> AliasEvent:
        """Remove an alias (recorded in its history)."""
        return self.store.delete_alias(name, alias, self.settings.user, reason)

    def delete(self, target: str, *, reason: str = "") -> None:
        """Soft-delete a model (``iris``) or one version (``iris/3``)."""
        uri = parse_uri(target)
        if uri.alias is not None:
            raise InvalidInputError(
                "delete a model (NAME) or a version (NAME/VERSION), not an alias"
            )
        if uri.version is None:
            self.store.delete_model(uri.name, self.settings.user, reason)
        else:
            self.store.delete_version(uri.name, uri.version, self.settings.user, reason)

    def _policy(self, trusted: bool) -> TrustPolicy:
        return TrustPolicy(trusted=trusted, trusted_types=self.settings.trusted_types)


def _artifact_store(location: str, home: Path) -> ArtifactStore:
    raw: LocalArtifactStore | S3ArtifactStore
    if location.startswith("s3://"):
        from modelport.artifacts.s3 import from_location

        raw = from_location(location, home)
    elif "://" in location and not location.startswith("file://"):
        raise ConfigurationError(
            f"artifact location {location!r}: use a local folder, file://PATH or "
            "s3://BUCKET/PREFIX")
    else:
        raw = LocalArtifactStore(location.removeprefix("file://"))
    if not os.environ.get(ENCRYPTION_KEY_ENV, "").strip():
        return raw
    from modelport.artifacts.encryption import EncryptedArtifactStore, EncryptionKey

    return EncryptedArtifactStore(raw, EncryptionKey.from_setting(
        os.environ[ENCRYPTION_KEY_ENV]))


def _signing_key(source: KeySource | None) -> SigningKey | None:
    """The key to sign a registration with: ``source``, else ``$MODELPORT_SIGNING_KEY``
    if set, else None (unsigned)."""
    if source is None and not os.environ.get(SIGNING_KEY_ENV, "").strip():
        return None
    from modelport.artifacts.signing import load_signing_key

    return load_signing_key(source)


def _check_signature(version: ModelVersion,
                     keys: VerifyKeys | Sequence[PublicKeySource]) -> str:
    """The trusted key id that signed ``version``, else UntrustedModelError."""
    from modelport.artifacts.signing import as_verify_keys

    trusted = as_verify_keys(keys)
    assert trusted is not None
    return trusted.verify(version.uri, version.name, version.version,
                          version.artifact_digest, version.signing)


def _dataset_version(registry: Registry, data: Any) -> Any:
    """The ``DatasetVersion`` that ``data`` names (a dataset URI or a version), else
    None for data given as such; other text is refused."""
    from modelport.registry.entities import DatasetVersion

    if isinstance(data, DatasetVersion):
        return registry.datasets.get(data.uri)  # it must exist in this registry
    if isinstance(data, str):
        from modelport.uri import is_dataset_uri

        if not is_dataset_uri(data):
            raise InvalidInputError(
                f"data given as text must be a dataset URI (datasets:/NAME/VERSION), got "
                f"{data[:80]!r}; pass a DataFrame, or register the file first "
                "(modelport datasets register NAME FILE)")
        return registry.datasets.get(data)
    return None
