"""deploy/grafana/modelport.json: valid JSON whose panels query metrics the server exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "modelport.json"


def test_dashboard_queries_only_exported_metrics() -> None:
    from modelport.serving.metrics import ServerMetrics

    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(dash["panels"]) >= 7 and all(exprs)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    queried = {re.sub(r"_(total|bucket|sum|count)$", "", n)
               for e in exprs for n in re.findall(r"\bmodelport_[a-z_]+", e)}
    exported = {m.name for m in ServerMetrics().registry.collect()}
    assert queried - exported == set()
    for needed in ("modelport_requests", "modelport_request_duration_seconds",
                   "modelport_batch_size_rows", "modelport_inflight_requests",
                   "modelport_model_loaded"):
        assert needed in queried
