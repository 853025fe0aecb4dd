"""Locked requirements: exactly the distributions a served version needs, each pinned.

Two sources of versions, in this order of authority:

1. the flavor's libraries at the versions recorded in the version's ``environment``
   when it was registered (what the model was saved with and tested against);
2. everything else at the versions installed in this interpreter
   (``importlib.metadata``): modelport's own runtime dependencies (as the running code
   declares them, ``selfdist``) and, transitively, theirs, walked with their
   environment markers evaluated here.

Only the flavor's libraries are added to modelport's core requirements: a scikit-learn
model does not drag in onnxruntime, nor a test or PostgreSQL driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from modelport.errors import ConflictError, InvalidInputError
from modelport.export import selfdist

SELF = "modelport"
# Installers, not dependencies of anything at run time.
_SKIP = frozenset({"pip", "setuptools", "wheel", SELF})


@dataclass(frozen=True)
class Pin:
    """One locked distribution and why it has this version."""

    name: str
    version: str
    source: str  # "recorded" (at registration) or "installed" (in this interpreter)


@dataclass
class Lock:
    """The pins, and notes for the README (recorded versions that differ from installed)."""

    pins: dict[str, Pin] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def requirements_txt(self, header: str) -> str:
        """The pins as a pip requirements file, sorted by name."""
        lines = [f"# {line}" if line else "#" for line in header.splitlines()]
        for key in sorted(self.pins):
            pin = self.pins[key]
            lines.append(f"{pin.name}=={pin.version}")
        return "\n".join(lines) + "\n"


def lock(recorded: dict[str, str], roots: tuple[str, ...] = ()) -> Lock:
    """Pins for modelport's runtime plus ``recorded`` (flavor library → version).

    ``roots`` adds requirement strings (e.g. an extra's library) to start from.
    ConflictError when a recorded version is outside what another pinned distribution
    requires (the image would not install); InvalidInputError for a malformed one.
    """
    out = Lock()
    # (requirement, who asked for it): every requirement on a pin is checked against it.
    wanted: dict[str, list[tuple[Requirement, str]]] = {}
    queue = [(r, SELF) for r in _applicable(selfdist.requirements(), SELF, set())]
    queue += [(_parse(r, "the build"), "the flavor") for r in roots]
    queue += [(_parse(f"{name}=={ver}", "the recorded environment"), "the registration")
              for name, ver in recorded.items()]
    forced = {canonicalize_name(n): v for n, v in recorded.items()}
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        req, parent = queue.pop()
        key = canonicalize_name(req.name)
        wanted.setdefault(key, []).append((req, parent))
        if key in _SKIP or (key, frozenset(req.extras)) in seen:
            continue
        seen.add((key, frozenset(req.extras)))
        installed = _installed_version(req.name)
        if key in forced:
            out.pins[key] = Pin(_display_name(req.name), forced[key], "recorded")
            if installed is not None and installed != forced[key]:
                out.notes.append(
                    f"{req.name}: {forced[key]} as recorded at registration ({installed} is "
                    "installed here; its dependencies are pinned as installed)")
        elif installed is not None:
            out.pins.setdefault(key, Pin(_display_name(req.name), installed, "installed"))
        else:
            raise InvalidInputError(
                f"{req.name} is needed at run time but not installed here, so its version "
                f"cannot be locked: install it (pip install '{req}') and build again")
        if installed is not None:
            name = f"{_display_name(req.name)} {installed}"
            queue += [(dep, name) for dep in _dependencies(req.name, req.extras)]
    _check(out, wanted)
    return out


def _check(out: Lock, wanted: dict[str, list[tuple[Requirement, str]]]) -> None:
    """Every pin satisfies every requirement on it, or the image would not install."""
    for key, reqs in wanted.items():
        pin = out.pins.get(key)
        if pin is None:
            continue
        for req, parent in reqs:
            if req.specifier and not req.specifier.contains(pin.version, prereleases=True):
                why = ("recorded at registration" if pin.source == "recorded"
                       else "installed here")
                raise ConflictError(
                    f"{pin.name} {pin.version} ({why}) does not satisfy '{req}', required "
                    f"by {parent}: the image could not install both")


def _dependencies(name: str, extras: set[str]) -> list[Requirement]:
    return _applicable(_requires(name), name, extras)


def _applicable(raws: list[str], name: str, extras: set[str]) -> list[Requirement]:
    """The requirements among ``raws`` whose markers hold here for ``extras``."""
    deps = []
    for raw in raws:
        req = _parse(raw, name)
        if req.marker is None or _applies(req.marker, extras):
            deps.append(Requirement(str(req).split(";", 1)[0]))
    return deps


def _applies(marker: Marker, extras: set[str]) -> bool:
    return any(marker.evaluate({"extra": extra}) for extra in ({""} | set(extras)))


def _requires(name: str) -> list[str]:
    try:
        return list(metadata.requires(name) or [])
    except metadata.PackageNotFoundError:
        return []


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _display_name(name: str) -> str:
    try:
        return str(metadata.metadata(name)["Name"])
    except (metadata.PackageNotFoundError, KeyError):
        return name


def _parse(raw: str, where: str) -> Requirement:
    try:
        return Requirement(raw)
    except InvalidRequirement as exc:
        raise InvalidInputError(f"invalid requirement {raw!r} from {where}: {exc}") from None
