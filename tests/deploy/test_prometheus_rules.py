"""deploy/prometheus/alerts.yml: valid for the real promtool, on metrics the server has."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml"


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool") or ("/usr/bin/promtool"
                                            if Path("/usr/bin/promtool").exists() else None)
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing on CI: install Debian's prometheus package")
        pytest.skip("promtool not installed")
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 5 rules found" in out.stdout + out.stderr


def test_rules_query_only_metrics_the_server_exports() -> None:
    from modelport.serving.metrics import ServerMetrics

    exported = {m.name for m in ServerMetrics().registry.collect()}
    names: set[str] = set()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            names |= set(re.findall(r"\bmodelport_[a-z_]+", rule["expr"]))
    base = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in names}
    assert base - exported == set()
