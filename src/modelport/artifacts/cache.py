"""A size-bounded local cache of content-addressed blobs, for remote artifact stores.

Files live at ``root/ab/<hex>``, written by temp file + atomic rename like the local
store, so a crash never leaves half a blob under a digest. Every read re-hashes the
file: a corrupt or truncated entry is dropped and reported as a miss, never served.
Least recently used entries (by modification time, refreshed on each hit) are evicted
once the total passes ``max_bytes``. Several processes may share one cache folder:
each keeps its own estimate of the total and rescans the folder before evicting.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

from modelport.artifacts.store import check_digest, digest_bytes


class BlobCache:
    """Blobs by digest on local disk, at most ``max_bytes`` in all (approximately)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root).expanduser()
        self.max_bytes = max(0, int(max_bytes))
        self._lock = threading.Lock()
        self._total: int | None = None  # computed on first write

    def _path(self, digest: str) -> Path:
        hexd = check_digest(digest)[7:]
        return self.root / hexd[:2] / hexd

    def get(self, digest: str) -> bytes | None:
        """The cached bytes, if an intact copy is here (else None)."""
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if digest_bytes(data) != digest:
            self.delete(digest)  # corrupt on disk: refetch rather than serve it
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used
        return data

    def put(self, digest: str, data: bytes) -> None:
        """Keep ``data`` (already verified by the caller), evicting old entries."""
        if self.max_bytes == 0 or len(data) > self.max_bytes:
            return
        path = self._path(digest)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return  # a cache that cannot write is only a slower cache
        with self._lock:
            self._total = (self._scan() if self._total is None else self._total + len(data))
            if self._total > self.max_bytes:
                self._evict()

    def delete(self, digest: str) -> None:
        """Drop a cached copy (no error if absent)."""
        with contextlib.suppress(OSError):
            self._path(digest).unlink()

    def size(self) -> int:
        """Bytes cached now (a scan of the folder)."""
        return self._scan()

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        for path in self.root.glob("??/*"):
            if path.name.startswith(".tmp-"):
                continue
            with contextlib.suppress(OSError):
                st = path.stat()
                out.append((st.st_mtime, st.st_size, path))
        return out

    def _scan(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _evict(self) -> None:
        entries = sorted(self._entries())  # oldest first
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
        self._total = total


__all__ = ["BlobCache"]
