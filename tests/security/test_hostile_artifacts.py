"""Hostile model files and tampered storage, through the real CLI.

Attack classes: pickle, joblib and skops files that would run code (each payload would
create a marker file: it must never appear); a skops file whose own metadata claims its
types are trusted; path tricks in model names and aliases; SQL metacharacters in every
string field; a registry row pointing at another digest, and artifact bytes changed on
disk. Each is refused with its exit code and leaves the registry and the artifact store
as they were.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import Cli
from tests.e2e.test_server_lifecycle import register_iris, registry

pytestmark = pytest.mark.e2e

EVIL_MODULE = '''
import os
from pathlib import Path


class Evil:
    """Creates the marker the moment it is unpickled or un-skopsed."""

    def __init__(self):
        self.x = 1

    def __setstate__(self, state):
        Path(os.environ["MARKER"]).touch()
        self.__dict__.update(state)

    def predict(self, X):
        return X


class Boom:
    def __reduce__(self):
        return (os.system, ("touch " + os.environ["MARKER"],))
'''


@pytest.fixture(scope="module")
def cli() -> Cli:
    return Cli()


@pytest.fixture
def evil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Payload files, the marker they would create, and the env that makes their
    module importable (as it would be on a victim's machine)."""
    import joblib
    import skops.io as sio

    (tmp_path / "evilmod.py").write_text(EVIL_MODULE)
    marker = tmp_path / "PWNED"
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MARKER", str(marker))
    import evilmod  # type: ignore[import-not-found]

    files = {"pkl": tmp_path / "evil.pkl", "joblib": tmp_path / "evil.joblib",
             "skops": tmp_path / "evil.skops", "fn": tmp_path / "fn.skops",
             "claims": tmp_path / "claims.skops"}
    files["pkl"].write_bytes(pickle.dumps(evilmod.Boom()))
    joblib.dump(evilmod.Boom(), files["joblib"])
    sio.dump(evilmod.Evil(), files["skops"])
    sio.dump({"f": os.system}, files["fn"])
    _claim_trust(files["skops"], files["claims"])
    sys.modules.pop("evilmod", None)
    env = {"MARKER": str(marker),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return {"files": files, "marker": marker, "env": env}


def _claim_trust(src: Path, dst: Path) -> None:
    """A copy of ``src`` whose schema says, every way it could, that its types are
    trusted: a loader that believes the file would load ``evilmod.Evil``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["trusted"] = ["evilmod.Evil"]
                schema["_trusted_types"] = ["evilmod.Evil"]
                schema["__trusted__"] = True
                data = json.dumps(schema).encode()
            zout.writestr(item, data)


def _snapshot(home: Path) -> tuple[object, ...]:
    blobs = sorted(str(p.relative_to(home)) for p in (home / "artifacts").rglob("*")
                   if p.is_file()) if (home / "artifacts").exists() else []
    with registry(home) as reg:
        models = [(m.name, m.version_count) for m in reg.list()]
    return tuple(models), tuple(blobs)


@pytest.mark.parametrize("kind", ["pkl", "joblib", "skops", "fn", "claims"])
def test_code_executing_model_files_are_refused(cli: Cli, evil: dict[str, Any],
                                                tmp_path: Path, kind: str) -> None:
    home = tmp_path / "home"
    register_iris(home)
    before = _snapshot(home)
    result = cli.run(home, "models", "register", "evil", evil["files"][kind], env=evil["env"])
    assert result.returncode == 6, result
    assert "trusted" in result.stderr and "Traceback" not in result.stderr
    assert not evil["marker"].exists(), "the payload ran"
    assert _snapshot(home) == before
    # Loading through the Python API (not only the CLI) refuses the same file.
    from modelport.errors import UntrustedModelError

    with registry(home) as reg, pytest.raises(UntrustedModelError):
        reg.register_file("evil", evil["files"][kind])
    assert not evil["marker"].exists()


@pytest.mark.parametrize("name", ["../evil", "..", "/etc/passwd", "a/../../b", "x\0y",
                                  "%2e%2e", "m'; DROP TABLE model_versions;--", "", "a" * 200])
def test_hostile_names_and_aliases(cli: Cli, tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    register_iris(home)
    before = _snapshot(home)
    skops_file = tmp_path / "ok.skops"
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(20, 2))
    sio.dump(LogisticRegression().fit(X, X[:, 0] > 0), skops_file)
    if "\0" not in name:  # a NUL cannot even reach argv; the Python API is checked below
        for result in cli.many(home, [
                ["models", "register", name, skops_file], ["models", "alias", "m", name, "1"],
                ["models", "show", name],
                ["predict", f"{name}/1", "--input", skops_file, "--output", tmp_path / "o.csv"]]):
            assert result.returncode in (2, 3), result
            assert "Traceback" not in result.stderr
    from modelport.errors import InvalidInputError

    with registry(home) as reg:
        with pytest.raises(InvalidInputError):
            reg.register_file(name, skops_file)
        with pytest.raises(InvalidInputError):
            reg.set_alias("m", name, 1)
    assert _snapshot(home) == before
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


SQL = "x'); DROP TABLE model_versions; -- \" OR 1=1 /* %s \\ ; `"


def test_sql_metacharacters_in_every_string_field(tmp_path: Path) -> None:
    """Stored and read back verbatim: every query binds its parameters."""
    from sklearn.linear_model import LogisticRegression

    home = tmp_path / "home"
    X = np.random.default_rng(0).normal(size=(20, 2))
    model = LogisticRegression().fit(X, X[:, 0] > 0)
    with registry(home) as reg:
        v = reg.log_model(model, "m", input_example=X[:2], description=SQL,
                          tags={SQL[:60]: SQL}, params={SQL[:60]: SQL},
                          metrics={"acc": 0.5})
        reg.set_alias("m", "champion", v.version, reason=SQL)
        back = reg.get("m@champion")
        assert back.description == SQL
        assert back.tags == {SQL[:60]: SQL} and back.params == {SQL[:60]: SQL}
        assert reg.history("m")[-1].reason == SQL
        assert reg.audit.verify().ok
        assert [m.name for m in reg.list()] == ["m"]
    with sqlite3.connect(home / "registry.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "model_versions" in tables


def test_tampered_digest_and_tampered_bytes_are_never_loaded(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_iris(home)  # m/1 and m/2
    with registry(home) as reg:
        other = reg.get("m/2").artifact_digest
    with sqlite3.connect(home / "registry.db") as db:  # m/1's row now names m/2's bytes
        db.execute("UPDATE model_versions SET artifact_digest = ? WHERE version = 1", (other,))
        db.execute("UPDATE model_versions SET artifact_digest = ? WHERE version = 2",
                   ("sha256:" + "0" * 64,))
    # A row pointing at bytes that do not exist: not found, nothing loaded.
    missing = cli.run(home, "models", "verify", "m/2")
    assert missing.returncode in (3, 5), missing
    # Bytes changed on disk: every blob flipped; the integrity check refuses them.
    for blob in (home / "artifacts").rglob("*"):
        if blob.is_file():
            data = bytearray(blob.read_bytes())
            data[len(data) // 2] ^= 0xFF
            blob.write_bytes(bytes(data))
    changed = cli.run(home, "models", "verify", "m/1")
    assert changed.returncode == 5, changed
    assert "digest" in changed.stderr.lower() or "integrity" in changed.stderr.lower()
    from modelport.errors import ArtifactIntegrityError, NotFoundError

    with registry(home) as reg:
        with pytest.raises(ArtifactIntegrityError):
            reg.load_model("m/1")
        with pytest.raises((NotFoundError, ArtifactIntegrityError)):
            reg.load_model("m/2")
