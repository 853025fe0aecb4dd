"""A model artifact as a bundle: named files plus a manifest, all content-addressed.

Each file is a blob; the manifest (JSON) lists every file's digest and size together
with the flavor and its metadata, and is itself a blob. The manifest's digest is the
version's artifact digest, so one digest pins everything that decides how a model
behaves, and every file is verified against it when read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from modelport.artifacts.store import ArtifactStore
from modelport.errors import ArtifactIntegrityError, InvalidInputError

MANIFEST_FORMAT = "modelport.bundle/1"
_PART = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_FILE_NAME_RE = re.compile(rf"{_PART}(/{_PART}){{0,7}}")


def check_file_name(name: str) -> str:
    """A relative path inside a bundle: no ``..``, no absolute paths, no odd bytes."""
    if not isinstance(name, str) or not _FILE_NAME_RE.fullmatch(name) or ".." in name.split("/"):
        raise InvalidInputError(f"invalid file name in model bundle: {str(name)[:80]!r}")
    return name


@dataclass(frozen=True)
class WrittenBundle:
    """The outcome of writing a bundle."""

    digest: str
    size: int
    created: tuple[str, ...]  # blobs that did not exist before this write
    files: dict[str, str] = field(default_factory=dict)  # file name -> its blob's digest


def write_bundle(
    store: ArtifactStore, files: dict[str, bytes], manifest_fields: dict[str, Any]
) -> WrittenBundle:
    """Store ``files`` and a manifest naming them; return the manifest's digest."""
    created: list[str] = []
    entries: dict[str, dict[str, Any]] = {}
    try:
        for name in sorted(files):
            data = files[name]
            check_file_name(name)
            existed_before = _exists(store, data)
            digest = store.put(data)
            if not existed_before:
                created.append(digest)
            entries[name] = {"digest": digest, "size": len(data)}
        manifest = {"format": MANIFEST_FORMAT, **manifest_fields, "files": entries}
        raw = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        existed_before = _exists(store, raw)
        digest = store.put(raw)
        if not existed_before:
            created.append(digest)
    except BaseException:
        for d in created:
            store.delete(d)
        raise
    total = len(raw) + sum(e["size"] for e in entries.values())
    return WrittenBundle(digest, total, tuple(created),
                         {name: e["digest"] for name, e in entries.items()})


def _exists(store: ArtifactStore, data: bytes) -> bool:
    from modelport.artifacts.store import digest_bytes

    return store.exists(digest_bytes(data))


class Bundle:
    """A stored model bundle opened for reading; every file read is digest-checked."""

    def __init__(self, store: ArtifactStore, digest: str) -> None:
        self.store = store
        self.digest = digest
        raw = store.get(digest)
        try:
            manifest = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ArtifactIntegrityError(f"artifact {digest} is not a model manifest") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ArtifactIntegrityError(
                f"artifact {digest} is not a model manifest (format "
                f"{manifest.get('format') if isinstance(manifest, dict) else None!r})"
            )
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise ArtifactIntegrityError(f"manifest {digest} lists no files")
        for name in files:
            check_file_name(name)
        self.manifest: dict[str, Any] = manifest

    @property
    def flavor(self) -> str:
        """The flavor that wrote this bundle."""
        return str(self.manifest.get("flavor", ""))

    @property
    def meta(self) -> dict[str, Any]:
        """The flavor's own metadata (class names, label encodings, ...)."""
        return dict(self.manifest.get("flavor_meta") or {})

    def names(self) -> list[str]:
        """File names in the bundle."""
        return sorted(self.manifest["files"])

    def read(self, name: str) -> bytes:
        """The verified content of file ``name``."""
        entry = self.manifest["files"].get(name)
        if entry is None:
            raise ArtifactIntegrityError(f"model bundle {self.digest} has no file {name!r}")
        data = self.store.get(entry["digest"])
        if len(data) != entry["size"]:
            raise ArtifactIntegrityError(f"file {name!r} of bundle {self.digest} has wrong size")
        return data

    def extract(self, dest: Path, prefix: str = "") -> Path:
        """Write the files under ``prefix`` into ``dest`` (for libraries that need paths)."""
        for name in self.names():
            if not name.startswith(prefix):
                continue
            target = dest / name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read(name))
        return dest

    def verify(self) -> int:
        """Read every file (checking digests); return the total byte count."""
        return sum(len(self.read(n)) for n in self.names())
