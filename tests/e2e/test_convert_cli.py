"""``modelport convert`` through the real CLI: exit codes and output users script against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import make_regression

from tests.e2e.test_server_lifecycle import register_iris, registry

pytestmark = pytest.mark.e2e


def test_convert_cli(cli: Any, tmp_path: Path) -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    home = tmp_path / "home"
    register_iris(home)  # m/1, m/2: logistic regressions with input examples
    ok = cli.run(home, "convert", "m/1", "--to", "onnx", "--json")
    assert ok.returncode == 0, ok
    out = ok.json()
    assert out["passed"] and out["version"] == "models:/m/3" and out["precision"] == "double"
    assert out["checks"]["input_example"]["label_agreement"] == 1.0
    shown = cli.run(home, "models", "show", "m/3", "--json")
    assert shown.json()["tags"]["converted_from"] == "models:/m/1"

    X, y = make_regression(200, 4, random_state=0)
    with registry(home) as reg:
        reg.log_model(GradientBoostingRegressor(n_estimators=20).fit(X, y), "r",
                      input_example=X[:50])
    refused = cli.run(home, "convert", "r/1", "--tolerance", "0", "--json")
    assert refused.returncode == 10, refused
    assert refused.json()["passed"] is False and "not equivalent" in refused.stderr
    assert cli.run(home, "models", "show", "r/2").returncode == 3  # nothing registered
    bad = cli.run(home, "convert", "m/1", "--to", "tflite")
    assert bad.returncode == 2 and "supported targets" in bad.stderr, bad
    missing = cli.run(home, "convert", "nope/1")
    assert missing.returncode == 3, missing


def test_convert_to_pmml_then_serve_it(cli: Any, tmp_path: Path) -> None:
    """The real CLI converts to PMML (and refuses a too tight tolerance with exit 10);
    a real server then answers the PMML version with the source's labels."""
    import httpx

    from tests.e2e.server import ServerProcess
    from tests.e2e.test_server_lifecycle import oip_body
    from tests.flavors.test_pmml import require_java

    pytest.importorskip("jpmml_evaluator")
    require_java()
    home = tmp_path / "home"
    Xq, expected = register_iris(home)
    ok = cli.run(home, "convert", "m/1", "--to", "pmml", "--json")
    assert ok.returncode == 0, ok
    out = ok.json()
    assert out["passed"] and out["version"] == "models:/m/3" and out["target"] == "pmml"
    assert out["checks"]["input_example"]["label_agreement"] == 1.0
    shown = cli.run(home, "models", "show", "m/3", "--json").json()
    assert shown["flavor"] == "pmml" and shown["tags"]["converted_from"] == "models:/m/1"

    X, y = make_regression(200, 4, random_state=0)
    with registry(home) as reg:
        from sklearn.ensemble import GradientBoostingRegressor

        reg.log_model(GradientBoostingRegressor(n_estimators=20).fit(X, y), "r",
                      input_example=X[:50])
    # The server starts its JVM and loads m/3 while the refused conversion runs.
    with ServerProcess(home, ["m/3", "--no-controller"], wait_ready=False) as server:
        refused = cli.run(home, "convert", "r/1", "--to", "pmml", "--tolerance", "1e-15")
        assert refused.returncode == 10 and "not equivalent" in refused.stderr, refused
        assert cli.run(home, "models", "show", "r/2").returncode == 3  # nothing registered
        server.wait_until_ready()
        resp = httpx.post(f"{server.url}/v2/models/m/infer", json=oip_body(Xq), timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["outputs"][0]["data"] == expected["1"]
        simple = httpx.post(f"{server.url}/predict", json={"features": Xq.tolist()},
                            timeout=30)
        assert simple.status_code == 200, simple.text
        assert simple.json()["predictions"] == expected["1"]
        assert server.terminate() == 0  # the JVM leaves SIGTERM to the server: it drains
