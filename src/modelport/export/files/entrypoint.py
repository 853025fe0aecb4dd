"""Entrypoint of a modelport image (written by ``modelport build docker``; stdlib only).

    python /app/entrypoint.py [serve [ARGS...]]   modelport serve --config ... (default)
    python /app/entrypoint.py healthcheck         exit 0 when /v2/health/ready answers 200
    python /app/entrypoint.py ARGS...             any other modelport command, e.g.
                                                  tokens create app --role predictor

Environment (defaults in brackets):

- ``MODELPORT_HOME`` [folder ``home`` beside this file]: the registry baked into the
  image. It is never written: on start its database is copied to
- ``MODELPORT_STATE_DIR`` [unset: use MODELPORT_HOME in place], a writable folder
  (prediction log, traffic counters, tokens). Its copy is kept across restarts while
  it comes from the same image; an image with another registry starts it afresh.
  Artifacts are always read from ``MODELPORT_HOME/artifacts`` (digest-checked).
- ``MODELPORT_DATABASE_URL``: a registry database of your own instead (e.g. the team's
  PostgreSQL, which holds tokens); then nothing is copied.
- ``MODELPORT_SERVE_CONFIG`` [serve.yaml beside this file], ``MODELPORT_SERVE_HOST``
  [0.0.0.0], ``MODELPORT_SERVE_PORT`` [8080], ``MODELPORT_SERVE_ARGS``: more ``serve``
  flags, split like a shell would (e.g. ``--workers 2``).
- ``MODELPORT_INSECURE_NO_AUTH=1``: serve without token auth on purpose (behind a
  gateway that authenticates); passed as ``--insecure-no-auth`` where serve has it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DB = "registry.db"
SEED_MARK = "seed.sha256"
NO_AUTH = "--insecure-no-auth"


def _say(message: str) -> None:
    print(f"entrypoint: {message}", file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_atomic(src: Path, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _seed(baked: Path, state: Path) -> None:
    """Copy the baked database into the state folder unless the copy there is from it."""
    state.mkdir(parents=True, exist_ok=True)
    seed = _sha256(baked / DB)
    mark = state / SEED_MARK
    current = mark.read_text().strip() if mark.is_file() else None
    if (state / DB).is_file() and current == seed:
        return
    if (state / DB).is_file():
        _say(f"{state / DB} comes from another image; starting from this image's registry "
             "(tokens created in the old copy must be created again)")
    for suffix in ("-wal", "-shm"):
        (state / f"{DB}{suffix}").unlink(missing_ok=True)
    _copy_atomic(baked / DB, state / DB)
    if (baked / "config.toml").is_file():
        _copy_atomic(baked / "config.toml", state / "config.toml")
    mark.write_text(seed + "\n")


def prepare(env: dict[str, str]) -> dict[str, str]:
    """The environment modelport runs with: registry home, state and artifacts settled."""
    out = dict(env)
    baked = Path(out.get("MODELPORT_HOME") or HERE / "home")
    out.setdefault("MODELPORT_ARTIFACTS", str(baked / "artifacts"))
    state = out.get("MODELPORT_STATE_DIR")
    if state and not out.get("MODELPORT_DATABASE_URL"):
        _seed(baked, Path(state))
        out["MODELPORT_HOME"] = state
    else:
        out["MODELPORT_HOME"] = str(baked)
    return out


def serve_command(env: dict[str, str], args: list[str],
                  options: set[str] | None = None) -> list[str]:
    """``modelport serve`` with the config, host and port from the environment.

    ``MODELPORT_INSECURE_NO_AUTH=1`` adds ``--insecure-no-auth`` when this modelport's
    serve has that flag; one without token auth has no auth to turn off, so nothing is
    added. ``options`` (serve's flags) is looked up only when needed.
    """
    extra = shlex.split(env.get("MODELPORT_SERVE_ARGS") or "")
    if env.get("MODELPORT_INSECURE_NO_AUTH", "").lower() in ("1", "true", "yes") and \
            NO_AUTH not in extra:
        known = options if options is not None else serve_options()
        if NO_AUTH in known:
            extra.append(NO_AUTH)
    return [
        sys.executable, "-m", "modelport", "serve",
        "--config", env.get("MODELPORT_SERVE_CONFIG") or str(HERE / "serve.yaml"),
        "--host", env.get("MODELPORT_SERVE_HOST") or "0.0.0.0",  # noqa: S104 - in a container
        "--port", env.get("MODELPORT_SERVE_PORT") or "8080",
        *extra, *args,
    ]


def serve_options() -> set[str]:
    """Every flag of the installed ``modelport serve`` (read from its click command).

    This script sits above the CLI (it runs it), so reading the CLI's own definition
    is the dependency pointing the right way, and exact where parsing ``--help`` text
    would depend on terminal width."""
    import typer.main

    from modelport.cli.main import app

    group = typer.main.get_command(app)
    command = group.commands["serve"]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in getattr(param, "opts", ())}


def healthcheck(env: dict[str, str]) -> int:
    """0 when the local server is ready, 1 otherwise (Docker's HEALTHCHECK contract)."""
    url = f"http://127.0.0.1:{env.get('MODELPORT_SERVE_PORT') or '8080'}/v2/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


def main(argv: list[str]) -> int:
    """Dispatch; ``serve`` and other commands replace this process (signals reach them)."""
    command = argv[0] if argv else "serve"
    if command == "healthcheck":
        return healthcheck(dict(os.environ))
    env = prepare(dict(os.environ))
    if command == "serve":
        cmd = serve_command(env, argv[1:])
    else:
        cmd = [sys.executable, "-m", "modelport", *argv]
    sys.stdout.flush()
    os.execve(sys.executable, cmd, env)  # noqa: S606 - argv is this image's own command
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
