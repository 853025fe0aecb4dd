"""``modelport build docker``: a Docker build context that serves one version.

The context holds a multi-stage Dockerfile (wheels built in a builder stage, installed
offline into a slim final stage that runs as a non-root user), requirements locked to
what the flavor needs, modelport's own wheel, a self-contained registry with the
version's artifacts (same digests, checked on every load), serve.yaml, an entrypoint
script, a .dockerignore and a README.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import modelport
from modelport.client import Registry
from modelport.errors import InvalidInputError
from modelport.export import common, lock, snapshot, wheel
from modelport.export.imageref import parse_image
from modelport.export.outdir import staged, write_text
from modelport.export.source import Source, resolve
from modelport.flavors import get_flavor
from modelport.registry.entities import ModelVersion

DISTRO = "slim-bookworm"
_PY_VERSION = re.compile(r"\d+\.\d+\.\d+")


@dataclass(frozen=True)
class DockerBuild:
    """What ``build_docker`` wrote."""

    source: Source
    out: Path
    base_image: str
    image_hint: str
    files: tuple[str, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``--json``)."""
        return {"target": "docker", "uri": self.source.uri, "endpoint": self.source.endpoint,
                "digest": self.source.version.artifact_digest, "out": str(self.out),
                "base_image": self.base_image, "image": self.image_hint,
                "files": list(self.files), "notes": list(self.notes)}


def base_image(version: ModelVersion, override: str | None = None) -> tuple[str, list[str]]:
    """The pinned Python base image and notes: the Python recorded at registration when
    its minor version is this interpreter's (the lock is computed here), else this one."""
    if override:
        return str(parse_image(override, "--base-image")), []
    here = platform.python_version()
    recorded = str(version.environment.get("python") or "")
    if _PY_VERSION.fullmatch(recorded) and recorded.split(".")[:2] == here.split(".")[:2]:
        return f"python:{recorded}-{DISTRO}", []
    note = (f"Python {here} (this interpreter, whose packages the lock pins) instead of "
            f"{recorded or 'an unrecorded version'} recorded at registration")
    return f"python:{here}-{DISTRO}", [note]


def build_docker(registry: Registry, target: str, out: Path, *, force: bool = False,
                 trusted: bool = False, base: str | None = None) -> DockerBuild:
    """Write the build context for ``target`` (an endpoint or a URI) into ``out``."""
    source = resolve(registry, target)
    common.check_trust(source, trusted)
    if source.version.flavor == "pmml":
        # The image would start and then fail its first load: no Java runtime in it.
        raise InvalidInputError(
            f"{source.uri} is a PMML version, which needs a Java runtime the image does "
            "not ship yet; build the source model or its ONNX conversion instead "
            "(modelport convert URI --to onnx)")
    image, notes = base_image(source.version, base)
    if os.environ.get("MODELPORT_ENCRYPTION_KEY", "").strip():
        notes.append("the baked artifacts are encrypted with MODELPORT_ENCRYPTION_KEY: give "
                     "the container the same key")
    flavor = get_flavor(source.version.flavor)
    locked = lock.lock(dict(source.version.environment.get("libraries") or {}),
                       roots=flavor.libraries)
    notes += locked.notes
    with staged(out, force=force) as stage:
        app = stage / "app"
        _write_registry(registry, source, app / "home", trusted)
        write_text(app / "serve.yaml", common.dump_yaml(common.serve_config(source, trusted)))
        write_text(app / "entrypoint.py", _script("entrypoint.py"), 0o755)
        write_text(app / "build.json", common.dump_json(common.build_record(
            source, "docker", base_image=image, artifacts=common.bundle_files(registry, source),
            requirements={p.name: p.version for p in locked.pins.values()}, notes=notes)))
        (stage / "wheels").mkdir()
        wheel_path = wheel.pack(stage / "wheels")
        header = (f"Locked by modelport {modelport.__version__} for {source.uri} "
                  f"({source.version.flavor}).\nFlavor libraries as recorded at registration; "
                  "the rest as installed where the context was built.")
        write_text(stage / "requirements.txt", locked.requirements_txt(header))
        write_text(stage / "Dockerfile", dockerfile(source, image, wheel_path.name))
        write_text(stage / ".dockerignore", DOCKERIGNORE)
        hint = f"modelport-{source.slug}:{source.version.version}"
        write_text(stage / "README.md", readme(source, image, hint, notes))
        files = tuple(sorted(str(p.relative_to(stage)) for p in stage.rglob("*")
                             if p.is_file() and "sha256" not in p.parts))
    return DockerBuild(source, out, image, hint, files, tuple(notes))


def _write_registry(registry: Registry, source: Source, home: Path, trusted: bool) -> None:
    """The one-version registry, verified and loaded once before it is packed."""
    dest = snapshot.snapshot(registry, source.version, home, alias=source.alias,
                             trusted_types=registry.settings.trusted_types)
    try:
        dest.verify(source.uri)
        dest.load_model(source.uri, trusted=trusted)  # what the image does on start
    finally:
        dest.close()
    snapshot.compact(home)


def _script(name: str) -> str:
    return resources.files("modelport.export.files").joinpath(name).read_text("utf-8")


DOCKERIGNORE = """\
# Only what the Dockerfile copies is sent to the builder.
*
!requirements.txt
!wheels
!app
**/__pycache__
**/*.pyc
"""


def dockerfile(source: Source, image: str, wheel_file: str) -> str:
    """The multi-stage Dockerfile."""
    v = source.version
    uid = common.UID
    return f"""\
# Serves {v.uri} ({v.flavor}, {v.artifact_digest}) as endpoint "{source.endpoint}".
# Written by modelport {modelport.__version__}. Build with BuildKit (Docker 23+):
#   docker build -t modelport-{source.slug}:{v.version} .

FROM {image} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt ./
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels --requirement requirements.txt
COPY requirements.txt wheels/ /wheels/

FROM {image}
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    MODELPORT_HOME=/app/home \\
    MODELPORT_STATE_DIR={common.STATE_DIR} \\
    MODELPORT_SERVE_HOST=0.0.0.0 \\
    MODELPORT_SERVE_PORT={common.PORT} \\
    MODELPORT_USER=modelport
# Wheels come from the builder through a bind mount: no layer keeps them, and this
# stage never compiles anything. Build tools are removed after the install.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \\
    python -m pip install --no-cache-dir --no-index --find-links=/wheels \\
        --requirement /wheels/requirements.txt \\
 && python -m pip install --no-cache-dir --no-index --no-deps /wheels/{wheel_file} \\
 && python -m pip check \\
 && python -m pip uninstall --yes setuptools wheel \\
 && groupadd --system --gid {uid} modelport \\
 && useradd --system --uid {uid} --gid {uid} --no-create-home --home-dir /nonexistent \\
        --shell /usr/sbin/nologin modelport \\
 && mkdir -p {common.STATE_DIR} \\
 && chown {uid}:{uid} {common.STATE_DIR}
# Code, serve.yaml and the baked registry stay owned by root: the server cannot change
# them; it writes only to {common.STATE_DIR} (and /tmp).
COPY app/ /app/
WORKDIR /app
USER {uid}:{uid}
EXPOSE {common.PORT}
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \\
    CMD ["python", "/app/entrypoint.py", "healthcheck"]
ENTRYPOINT ["python", "/app/entrypoint.py"]
CMD ["serve"]
"""


def readme(source: Source, image: str, tag: str, notes: list[str]) -> str:
    """The context's README: build, run, auth, state, provenance."""
    v = source.version
    note_lines = "".join(f"- {n}\n" for n in notes) or "- none\n"
    return f"""\
# {source.endpoint}: {v.uri} in a container

Written by `modelport build docker {source.given}` (modelport {modelport.__version__}).
Serves {v.uri} ({v.flavor}, artifact `{v.artifact_digest}`) as the endpoint
`{source.endpoint}` on port {common.PORT}: OIP/KServe V2 (`/v2/models/{source.endpoint}/infer`),
MLflow (`/invocations`), KServe V1 and `/predict`; `/metrics` for Prometheus.

## Build and run

```bash
docker build -t {tag} .          # BuildKit (the default since Docker 23)
docker run --rm -p {common.PORT}:{common.PORT} \\
  -e MODELPORT_INSECURE_NO_AUTH=1 {tag}   # or see "Authentication"
curl -s localhost:{common.PORT}/v2/health/ready
```

Base image `{image}`, pinned by exact tag (pin a digest with `--base-image
python:X.Y.Z-slim-bookworm@sha256:...`). The builder stage turns `requirements.txt`
into wheels; the final stage installs them offline, then modelport from
`wheels/` (never from an index, where another project could use the name), runs
`pip check`, removes setuptools and wheel, and runs as user {common.UID} (not root).
`HEALTHCHECK` runs `python /app/entrypoint.py healthcheck` (the slim image has no
curl), which asks `/v2/health/ready`.

{_runtime_section(tag)}## What is inside

- `app/home/`: a registry (SQLite + `artifacts/sha256/...`) holding only {v.uri}
  (lower numbers are deleted placeholders, so the number is the source's); its alias,
  if the build named one. Every file is digest-checked when the server loads it.
- `app/serve.yaml`, `app/entrypoint.py`, `app/build.json` (what was built from what,
  the artifact files with their digests, the locked versions).
- `requirements.txt`: locked; `wheels/`: modelport's own wheel.

Notes from the build:
{note_lines}"""


def _runtime_section(tag: str) -> str:
    """README: authentication choices and the entrypoint's environment."""
    return f"""\
## Authentication

The container binds `0.0.0.0`, and expects to check tokens: a modelport with token
auth refuses to serve a non-loopback address when no token exists, unless told to
serve without auth. Choose one:

- **Tokens in the image's state.** Keep `{common.STATE_DIR}` on a volume, create a
  token there, then serve:
  `docker run --rm -v mp-state:{common.STATE_DIR} {tag} tokens create app --role predictor`,
  then `docker run -d -p {common.PORT}:{common.PORT} -v mp-state:{common.STATE_DIR} {tag}`.
- **Tokens in your registry.** `-e MODELPORT_DATABASE_URL=postgresql+psycopg://...`
  (the registry this context came from: the version and its digests are the same
  there); artifacts are still read from the image.
- **No auth, on purpose**, behind a gateway that authenticates:
  `-e MODELPORT_INSECURE_NO_AUTH=1` (passed as `serve --insecure-no-auth` where serve
  has that flag; a modelport without token auth has nothing to turn off).

## Environment

| variable | default | meaning |
|---|---|---|
| `MODELPORT_SERVE_ARGS` | (empty) | more `modelport serve` flags, e.g. `--workers 2` |
| `MODELPORT_INSECURE_NO_AUTH` | (unset) | `1`: serve without token auth |
| `MODELPORT_SERVE_HOST` / `MODELPORT_SERVE_PORT` | `0.0.0.0` / `{common.PORT}` | where to listen |
| `MODELPORT_SERVE_CONFIG` | `/app/serve.yaml` | another serve.yaml (e.g. a mounted ConfigMap) |
| `MODELPORT_STATE_DIR` | `{common.STATE_DIR}` | writable: registry copy, prediction log |
| `MODELPORT_HOME` | `/app/home` | the baked, read-only registry |

`python /app/entrypoint.py ARGS` runs any other modelport command against the same
registry (`docker run --rm {tag} models list`). The root filesystem can be read-only
when `{common.STATE_DIR}` and `/tmp` are writable.

"""
