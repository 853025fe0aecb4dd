"""The model registry: models, immutable versions, aliases and their history.

The registry knows nothing of serving, rollout or monitoring; they read it.
"""

from modelport.registry.entities import AliasEvent, ModelVersion, RegisteredModel
from modelport.registry.store import NewVersion, RegistryStore, SqlRegistryStore

__all__ = [
    "AliasEvent",
    "ModelVersion",
    "NewVersion",
    "RegisteredModel",
    "RegistryStore",
    "SqlRegistryStore",
]
