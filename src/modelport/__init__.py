"""modelport: continuous delivery for machine-learning models.

The small public API::

    import modelport
    v = modelport.log_model(model, "iris", input_example=X[:5], metrics={"accuracy": 0.97})
    modelport.Registry().set_alias("iris", "champion", v.version)
    m = modelport.load_model("models:/iris@champion")
    m.predict(X)
    d = modelport.register_dataset("churn", "churn.parquet")   # datasets:/churn/1
    modelport.load_dataset("datasets:/churn/1")                 # digest-checked frame

``modelport.connect()`` talks to a ``modelport serve --auth`` server's control plane
instead (``MODELPORT_URL``, ``MODELPORT_TOKEN``): the same list, register, alias,
rollout and audit operations, as that token.

Nothing happens at import: registries open on first use.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from modelport.client import LoadedModel, Registry, VerifyReport
from modelport.errors import ModelportError
from modelport.flavors.python_model import ModelContext, PythonModel
from modelport.registry.entities import AliasEvent, DatasetVersion, ModelVersion, RegisteredModel

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from modelport.artifacts.signing import KeySource, PublicKeySource, VerifyKeys
    from modelport.control.remote import RemoteControl
    from modelport.gates import GateReport

__version__ = "0.1.0"


def log_model(
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
    registry: Registry | None = None,
    sign_key: KeySource | None = None,
) -> ModelVersion:
    """Register ``model`` as the next version of ``name`` in the default registry
    (signed with ``sign_key``, or ``$MODELPORT_SIGNING_KEY`` if set); ``training_data``
    and ``eval_data`` (frames, or dataset URIs) are linked as dataset versions."""
    reg = registry or Registry()
    try:
        return reg.log_model(
            model, name, input_example=input_example, metrics=metrics, params=params,
            tags=tags, training_data=training_data, eval_data=eval_data, trusted=trusted,
            description=description, artifacts=artifacts, sign_key=sign_key,
        )
    finally:
        if registry is None:
            reg.close()


def load_model(
    uri: str, *, trusted: bool = False, registry: Registry | None = None,
    require_signature_keys: VerifyKeys | Sequence[PublicKeySource] | None = None,
) -> LoadedModel:
    """Load ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``NAME/VERSION`` or
    ``NAME@ALIAS`` (refused unless signed by one of ``require_signature_keys``, if given)."""
    reg = registry or Registry()
    try:
        return reg.load_model(uri, trusted=trusted, require_signature_keys=require_signature_keys)
    finally:
        if registry is None:
            reg.close()


def register_dataset(name: str, data: Any, *, description: str = "",
                     registry: Registry | None = None) -> DatasetVersion:
    """Register ``data`` (a CSV/Parquet path or a DataFrame) as the next version of
    dataset ``name``; identical content answers the version that already holds it."""
    reg = registry or Registry()
    try:
        return reg.datasets.register(name, data, description=description).version
    finally:
        if registry is None:
            reg.close()


def load_dataset(uri: str, *, registry: Registry | None = None) -> pd.DataFrame:
    """The data of ``datasets:/NAME/VERSION`` (or ``datasets:/NAME``, the newest), every
    byte checked against its digest."""
    reg = registry or Registry()
    try:
        return reg.datasets.load(uri)
    finally:
        if registry is None:
            reg.close()


def gate(
    candidate_uri: str,
    data: Any,
    target: str,
    *,
    against: str | int | None = "champion",
    rules: Iterable[str] = (),
    max_latency_ms: float | None = None,
    task: str | None = None,
    trusted: bool = False,
    registry: Registry | None = None,
) -> GateReport:
    """Gate a candidate version on evaluation data (a file path or a DataFrame).

    Returns the report (``report.passed``); the verdict is stored with the version.
    """
    from modelport.gates import run_gate

    reg = registry or Registry()
    try:
        return run_gate(reg, candidate_uri, data, target, against=against, rules=rules,
                        max_latency_ms=max_latency_ms, task=task, trusted=trusted)
    finally:
        if registry is None:
            reg.close()


def connect(url: str | None = None, token: str | None = None, *,
            timeout: float = 60.0) -> RemoteControl:
    """A client of a server's ``/api/`` control plane (default ``$MODELPORT_URL`` and
    ``$MODELPORT_TOKEN``): ``list``, ``get``, ``register_file``, ``set_alias``,
    ``rollout_start``, ``rollback``, ``audit_list`` ... as on a local registry, recorded
    as the token's name. ``Registry()`` stays local."""
    from modelport.control.remote import RemoteControl

    return RemoteControl(url, token, timeout=timeout)


__all__ = [
    "AliasEvent",
    "DatasetVersion",
    "LoadedModel",
    "ModelContext",
    "ModelVersion",
    "ModelportError",
    "PythonModel",
    "RegisteredModel",
    "Registry",
    "VerifyReport",
    "__version__",
    "connect",
    "gate",
    "load_dataset",
    "load_model",
    "log_model",
    "register_dataset",
]
