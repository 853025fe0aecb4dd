"""Lineage on a real registry: dataset → pipeline run / tuning study → version → gate →
canary rollout → promoted deployment, a conversion, and the reverse question."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from rich.console import Console
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelport.cli.lineage import render
from modelport.client import Registry
from modelport.config import Settings
from modelport.gates import run_gate
from modelport.lineage import deployed_on, endpoint_lineage, of_uri
from modelport.registry.entities import PipelineRun
from modelport.registry.times import utcnow
from modelport.rollout import service
from modelport.rollout.analysis import Thresholds
from modelport.rollout.strategies import plan


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """iris/1 (champion, trained on datasets:/iris-data/1); iris/2 from a recorded
    pipeline run and a tuning trial, gated, canaried and promoted; iris/3, a conversion
    of iris/2 deployed on its own endpoint. Built once: every test only reads it."""
    with pytest.MonkeyPatch.context() as mp:
        for key in ("MODELPORT_SIGNING_KEY", "MODELPORT_ENCRYPTION_KEY",
                    "MODELPORT_DATABASE_URL"):
            mp.delenv(key, raising=False)
        mp.setenv("MODELPORT_USER", "tester")
        reg = Registry(settings=Settings.load(tmp_path_factory.mktemp("lineage") / "home"))
        try:
            yield _build(reg)
        finally:
            reg.close()


def _build(reg: Registry) -> SimpleNamespace:
    X, y = load_iris(return_X_y=True, as_frame=True)
    data = reg.datasets.register("iris-data", X).version
    model = LogisticRegression(max_iter=500).fit(X, y)
    reg.log_model(model, "iris", input_example=X[:5], training_data=data.uri)
    reg.set_alias("iris", "champion", 1)
    run = PipelineRun("run-0123456789", "train-iris", "succeeded", "abc1234", [], utcnow(),
                      utcnow(), "ci")
    reg.records.save_pipeline_run(run)
    v2 = reg.log_model(model, "iris", input_example=X[:5], training_data=data,
                       eval_data=X.assign(species=y)[:40], tags={
                           "pipeline": "train-iris", "pipeline_run": run.id,
                           "git_commit": "abc1234", "modelport.tune.study": "lr-c",
                           "modelport.tune.trial": "7", "modelport.tune.value": "0.97"})
    gate = run_gate(reg, "iris/2", X.assign(species=y), "species",
                    same_training_schema=True)
    assert gate.passed, gate.summary()
    service.start(reg, "iris", "iris/2", plan("canary", steps="10,100", step_requests=5),
                  service.AnalysisSpec(Thresholds()))
    service.promote(reg, "iris")
    v3 = reg.log_model(model, "iris", tags={"converted_from": v2.uri, "conversion": "onnx"})
    reg.deployments.create("edge", "iris", v3.version, "tester")
    return SimpleNamespace(reg=reg, data=data, gate=gate, run=run, X=X, y=y, model=model)


def test_the_graph_of_a_promoted_version(world: SimpleNamespace) -> None:
    graph = of_uri(world.reg, "iris@champion").to_dict()  # the promotion moved the alias
    assert graph["root"] == "models:/iris/2"
    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = {(e["source"], e["relation"], e["target"]) for e in graph["edges"]}
    v2, gate = "models:/iris/2", f"gate:{world.gate.gate_id}"
    rollout = next(i for i, n in nodes.items() if n["kind"] == "rollout")
    assert {
        ("datasets:/iris-data/1", "training", v2), ("datasets:/iris-eval/1", "eval", v2),
        (f"pipeline_run:{world.run.id}", "produced", v2), ("tune_study:lr-c", "trial", v2),
        (v2, "gated", gate), (v2, "candidate", rollout),
        (rollout, "rolled_out", "deployment:iris"), (v2, "serves", "deployment:iris"),
        (v2, "converted", "models:/iris/3"), ("models:/iris/3", "serves", "deployment:edge"),
    } <= edges
    assert nodes[rollout]["status"] == "promoted"
    kinds = [e["kind"] for e in nodes[rollout]["events"]]
    assert kinds[0] == "rollout_started" and kinds[-1] == "promoted"
    assert nodes[gate]["passed"] is True and nodes[gate]["against"] == 1
    assert nodes[f"pipeline_run:{world.run.id}"]["status"] == "succeeded"
    trial = next(e for e in graph["edges"] if e["relation"] == "trial")
    assert (trial["trial"], trial["value"]) == ("7", 0.97)
    serves = next(e for e in graph["edges"] if e["relation"] == "serves"
                  and e["target"] == "deployment:iris")
    assert (serves["role"], serves["share"]) == ("stable", 100.0)
    assert nodes["datasets:/iris-data/1"]["rows"] == 150


def test_the_graph_of_a_dataset_and_of_a_conversion(world: SimpleNamespace) -> None:
    graph = of_uri(world.reg, "datasets:/iris-data/1")
    assert [e.target for e in graph.outgoing("datasets:/iris-data/1")] == [
        "models:/iris/1", "models:/iris/2"]
    assert "deployment:edge" in graph.nodes  # through iris/2's conversion
    conversion = of_uri(world.reg, "iris/3")
    assert ("models:/iris/2", "models:/iris/3", "converted") in {
        (e.source, e.target, e.relation) for e in conversion.edges}
    # The source's own upstream comes along: the conversion was trained on its data.
    assert "datasets:/iris-data/1" in conversion.nodes


def test_which_deployed_versions_were_trained_on_a_dataset(world: SimpleNamespace) -> None:
    rows = deployed_on(world.reg, "datasets:/iris-data/1")
    assert [(r["model_version"], r["converted_from"]) for r in rows] == [
        ("models:/iris/2", None), ("models:/iris/3", "models:/iris/2")]
    assert rows[0]["deployments"] == [{"deployment": "iris", "role": "stable", "share": 100.0}]
    assert rows[0]["aliases"] == ["champion"]
    assert deployed_on(world.reg, "datasets:/iris-eval/1") == []  # eval data trains nothing
    assert [r["model_version"] for r in deployed_on(world.reg, "datasets:/iris-eval/1",
                                                    role="eval")] == [
        "models:/iris/2", "models:/iris/3"]


def test_endpoint_lineage_for_the_dashboard(world: SimpleNamespace) -> None:
    view = endpoint_lineage(world.reg, "iris")
    [stable] = view["versions"]
    assert (stable["role"], stable["uri"]) == ("stable", "models:/iris/2")
    assert {(d["role"], d["uri"]) for d in stable["datasets"]} == {
        ("training", "datasets:/iris-data/1"), ("eval", "datasets:/iris-eval/1")}
    assert stable["pipeline_run"]["id"] == world.run.id
    assert stable["tuning"] == {"study": "lr-c", "trial": "7", "value": "0.97"}
    assert stable["gate"]["passed"] is True
    assert endpoint_lineage(world.reg, "edge")["versions"][0]["converted_from"] == \
        "models:/iris/2"


def test_the_tree_people_read(world: SimpleNamespace) -> None:
    console = Console(record=True, width=240)
    console.print(render(of_uri(world.reg, "iris/2")))
    text = console.export_text()
    for words in ("models:/iris/2 (sklearn", "trained on datasets:/iris-data/1 (150 rows",
                  "evaluated on datasets:/iris-eval/1", "made by pipeline run train-iris "
                  "run-0123 (succeeded, abc1234)", "trial 7 (value 0.97) of tuning study lr-c",
                  f"gate #{world.gate.gate_id} passed vs v1", "rollout #1 canary: promoted",
                  "on deployment iris (stable v2, alias champion)",
                  "serving (stable, 100% of answers) in deployment iris",
                  "converted to models:/iris/3"):
        assert words in text, text
    console.print(render(of_uri(world.reg, "datasets:/iris-data/1")))
    assert "trained models:/iris/1" in console.export_text()


def test_the_gate_refuses_another_training_schema(world: SimpleNamespace) -> None:
    reg, X = world.reg, world.X
    other = reg.datasets.register("iris-narrow", X.drop(columns="petal width (cm)")).version
    with pytest.warns(UserWarning, match="no prediction profile"):  # it needs that column
        v = reg.log_model(world.model, "iris", input_example=X[:5], training_data=other)
    eval_rows = X.assign(species=world.y)
    report = run_gate(reg, v.uri, eval_rows, "species", same_training_schema=True,
                      record=False)
    check = report.checks[-1]
    assert not report.passed and check.name == "training data schema"
    assert "- petal width (cm) (float64)" in check.message and "iris-data/1" in check.message
    unlinked = reg.log_model(world.model, "iris", input_example=X[:5])
    report = run_gate(reg, unlinked.uri, eval_rows, "species", same_training_schema=True,
                      record=False)
    assert not report.passed and "no training dataset linked" in report.checks[-1].message
    first = run_gate(reg, "iris/1", eval_rows, "species", against=None,
                     same_training_schema=True, record=False)
    assert first.passed and first.checks[-1].skipped  # no champion: nothing to compare
