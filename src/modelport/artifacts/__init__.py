"""Content-addressed artifact storage and model bundles."""

from modelport.artifacts.bundle import Bundle, WrittenBundle, write_bundle
from modelport.artifacts.store import (
    ArtifactStore,
    LocalArtifactStore,
    MemoryArtifactStore,
    check_digest,
    digest_bytes,
)

__all__ = [
    "ArtifactStore",
    "Bundle",
    "LocalArtifactStore",
    "MemoryArtifactStore",
    "WrittenBundle",
    "check_digest",
    "digest_bytes",
    "write_bundle",
]
