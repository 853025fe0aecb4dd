"""Writing a target folder all at once: build in a hidden folder beside it, then rename.

A reader (``docker build``, ``kubectl apply -f``) never sees a half-written folder, and a
failed build leaves the destination as it was: the staging folder is removed and no
parent folder that this write created is left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from modelport.errors import InvalidInputError


def check_destination(out: Path, *, force: bool) -> None:
    """Refuse ``out`` before any work when it cannot take a new build.

    An absent or empty folder is fine; a non-empty one needs ``force`` (its content is
    replaced, never merged); a file is never replaced.
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InvalidInputError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InvalidInputError(
            f"--out {out} is not empty; choose an empty or new folder, or pass --force to "
            "replace its content")
    parent = _existing_ancestor(out.parent)
    if not os.access(parent, os.W_OK):
        raise InvalidInputError(f"--out {out}: cannot write in {parent}")


@contextlib.contextmanager
def staged(out: Path, *, force: bool) -> Iterator[Path]:
    """A fresh folder beside ``out`` to fill; it replaces ``out`` when the block succeeds.

    On an exception the staging folder is removed, and so are parent folders created
    for it; ``out`` itself is untouched.
    """
    out = out.absolute()
    check_destination(out, force=force)
    created = _make_parents(out.parent)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield stage
        _replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _replace(stage: Path, out: Path) -> None:
    """Move ``stage`` to ``out``; an existing ``out`` is renamed away first, then removed."""
    # mkdtemp makes it 0700; the result is an ordinary, world-readable folder
    os.chmod(stage, 0o755)  # noqa: S103
    if not out.exists():
        os.rename(stage, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    old.rmdir()
    os.rename(out, old)
    try:
        os.rename(stage, out)
    except BaseException:
        os.rename(old, out)  # put the previous content back rather than leave nothing
        raise
    shutil.rmtree(old, ignore_errors=True)


def _make_parents(folder: Path) -> list[Path]:
    missing: list[Path] = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    created = []
    for path in reversed(missing):
        path.mkdir()
        created.append(path)
    return created


def _existing_ancestor(folder: Path) -> Path:
    probe = folder.absolute()
    while not probe.exists():
        probe = probe.parent
    return probe


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` (creating parents) with a fixed file mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
