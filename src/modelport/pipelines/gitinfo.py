"""The git commit a pipeline runs at, when its folder is inside a git work tree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def git_commit(folder: Path) -> str | None:
    """``git rev-parse HEAD`` in ``folder``; None without git, outside a repo, or before
    the first commit."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and _SHA.fullmatch(sha) else None


__all__ = ["git_commit"]
