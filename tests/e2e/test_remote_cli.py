"""End to end: the real CLI against a real ``modelport serve --auth`` process through
``MODELPORT_URL``/``MODELPORT_TOKEN``, from a different (empty) ``MODELPORT_HOME``.

Upload-register, list, alias, rollout start/status/promote, rollback, audit list/verify,
all recorded as the token's name; the same exit codes as a local run for a bad token
(13), a token outside its role (14) and a missing model (3); a local-only command is
refused rather than run against the empty home.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from modelport.client import Registry
from modelport.config import Settings
from tests.e2e.conftest import Cli
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


def test_the_cli_runs_against_a_remote_server(cli: Cli, tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(5).normal(size=(40, 2))
    model_file = tmp_path / "sk.skops"
    sio.dump(LogisticRegression().fit(X, (X[:, 0] > X[:, 1]).astype(int)), model_file)
    pickled = tmp_path / "light.pkl"
    pickled.write_bytes(pickle.dumps(SimpleNamespace(predict=np.sign)))
    home = tmp_path / "server-home"
    with Registry(settings=Settings.load(home)) as reg:
        seed = tmp_path / "seed.pkl"
        seed.write_bytes(pickle.dumps(SimpleNamespace(predict=np.abs)))
        reg.register_file("iris", seed, trusted=True)
        ci = reg.tokens.create("ci-bot", "deployer", actor="test").value
        pred = reg.tokens.create("pred", "predictor", actor="test").value
        audit = reg.tokens.create("auditor", "reader", actor="test").value
    client_home = tmp_path / "client-home"
    with ServerProcess(home, ["iris", "--trusted", "--auth", "--no-controller",
                                 "--no-dashboard"]) as srv:
        def run(*args: str | Path, token: str = ci) -> object:
            return cli.run(client_home, *args, env={"MODELPORT_URL": srv.url,
                                                    "MODELPORT_TOKEN": token, "COLUMNS": "200"})

        r = run("models", "register", "iris", model_file, "--metric", "acc=0.9", "--json")
        assert r.returncode == 0, r
        created = r.json()
        assert (created["version"], created["created_by"]) == (2, "token:ci-bot")
        assert created["tags"]["source_file"] == "sk.skops"
        r = run("models", "list", "--json")
        assert r.returncode == 0 and [m["name"] for m in r.json()] == ["iris"], r
        r = run("models", "list", "iris")  # the rich table, as locally
        assert r.returncode == 0 and "token:ci-bot" in r.stdout and "sklearn" in r.stdout, r
        r = run("models", "alias", "iris", "champion", "1", "--reason", "first")
        assert r.returncode == 0 and "iris@champion → version 1" in r.stderr, r
        r = run("rollout", "start", "iris", "--candidate", "iris/2", "--step-duration",
                "60s", "--json")
        assert r.returncode == 0, r
        assert r.json()["rollout"]["created_by"] == "token:ci-bot"
        r = run("rollout", "status", "iris", "--json")
        assert r.returncode == 0 and r.json()[0]["rollout"]["status"] == "running", r
        r = run("rollout", "promote", "iris")
        assert r.returncode == 0 and "promoted" in r.stderr, r
        r = run("rollback", "iris", "--reason", "regression", "--json")
        assert r.returncode == 0 and (r.json()["stable"], r.json()["previous"]) == (1, 2), r
        r = run("audit", "list", "--json", token=audit)
        assert r.returncode == 0, r
        actors = {(x["action"], x["actor"]) for x in r.json()}
        assert {("version.register", "token:ci-bot"), ("alias.set", "token:ci-bot")} <= actors
        r = run("audit", "verify", token=audit)
        assert r.returncode == 0 and "audit log intact" in r.stdout, r

        # The same exit codes as locally: 13 bad token, 14 outside the role, 3 missing,
        # 6 for an untrusted pickle; a trusted upload needs an admin (14).
        r = run("models", "list", token="mp_0123456789abcdef_nope")
        assert r.returncode == 13 and "invalid token" in r.stderr, r
        r = run("models", "register", "iris", model_file, token=pred)
        assert r.returncode == 14 and "predictor token may not deploy" in r.stderr, r
        r = run("models", "show", "nope/1")
        assert r.returncode == 3, r
        r = run("models", "register", "iris", pickled)
        assert r.returncode == 6 and "--trusted" in r.stderr, r
        r = run("models", "register", "iris", pickled, "--trusted")
        assert r.returncode == 14 and "may not admin" in r.stderr, r
        r = run("models", "delete", "iris", "--yes")
        assert r.returncode == 2 and "unset MODELPORT_URL" in r.stderr, r
    assert not (client_home / "registry.db").exists()
    with Registry(settings=Settings.load(home)) as reg:
        assert [v.version for v in reg.list("iris")] == [2, 1]
