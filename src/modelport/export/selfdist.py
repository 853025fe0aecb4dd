"""modelport's own distribution: the requirements the running code declares, and its
METADATA for the wheel a build context carries.

An editable install keeps the metadata of the day it was installed: a dependency added
to ``pyproject.toml`` since then is missing from ``importlib.metadata``. When the
running package sits in a source checkout (``src/modelport`` beside a
``pyproject.toml`` naming modelport), its declared requirements are read from there;
otherwise from the installed distribution.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import modelport
from modelport.errors import ConfigurationError


def _pyproject() -> dict[str, object] | None:
    candidate = Path(modelport.__file__).resolve().parents[2] / "pyproject.toml"
    try:
        data = tomllib.loads(candidate.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    project = data.get("project")
    if isinstance(project, dict) and project.get("name") == "modelport":
        return project
    return None


def requirements() -> list[str]:
    """Every ``Requires-Dist`` of the running code, extras as ``; extra == "x"`` markers."""
    project = _pyproject()
    if project is None:
        return list(metadata.requires("modelport") or [])
    out = [str(r) for r in project.get("dependencies") or []]  # type: ignore[attr-defined]
    extras = project.get("optional-dependencies") or {}
    for extra, reqs in extras.items():  # type: ignore[attr-defined]
        for req in reqs:
            spec, _, marker = str(req).partition(";")
            when = f'({marker.strip()}) and extra == "{extra}"' if marker.strip() else \
                f'extra == "{extra}"'
            out.append(f"{spec.strip()}; {when}")
    return out


def extras() -> list[str]:
    """The extras the running code declares."""
    project = _pyproject()
    if project is None:
        return list(metadata.metadata("modelport").get_all("Provides-Extra") or [])
    return list(project.get("optional-dependencies") or {})  # type: ignore[call-overload]


def metadata_text() -> str:
    """METADATA for the wheel: the installed headers with this code's version, extras
    and requirements."""
    try:
        text = metadata.distribution("modelport").read_text("METADATA") or ""
    except metadata.PackageNotFoundError:
        raise ConfigurationError(
            "modelport is imported but not installed as a distribution, so its metadata "
            "is unknown: install it (pip install -e .)") from None
    head, _, body = text.partition("\n\n")
    keep = [line for line in head.splitlines()
            if not line.startswith(("Requires-Dist:", "Provides-Extra:", "Version:"))]
    at = next((i + 1 for i, line in enumerate(keep) if line.startswith("Name:")), len(keep))
    lines = [*keep[:at], f"Version: {modelport.__version__}", *keep[at:]]
    lines += [f"Provides-Extra: {e}" for e in extras()]
    lines += [f"Requires-Dist: {r}" for r in requirements()]
    return "\n".join(lines) + "\n\n" + body


def entry_points() -> str:
    """The console script."""
    try:
        text = metadata.distribution("modelport").read_text("entry_points.txt")
    except metadata.PackageNotFoundError:
        text = None
    return text or "[console_scripts]\nmodelport = modelport.cli.main:main\n"
