"""``modelport build k8s``: manifests validated against the Kubernetes schemas.

The plain manifests go through ``kubernetes-validate`` in strict mode (unknown fields
refused) against a pinned Kubernetes version. KServe's InferenceService is a CRD the
package has no schema for: its structure is checked by hand below.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from modelport.errors import InvalidInputError, UntrustedModelError
from modelport.export.k8s import KSERVE, PLAIN, manifests, write
from modelport.serving.config import load_spec
from tests.e2e.conftest import Cli

KUBERNETES = "1.30.0"  # pinned: the oldest minor still widely run that has every API used


@pytest.fixture(scope="module")
def built(source: SimpleNamespace) -> Any:
    return manifests(source.registry, "flowers", replicas=3,
                     image="registry.example.com/ml/flowers:2")


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else \
        doc["spec"]["predictor"]
    (container,) = spec["containers"]
    return dict(container)


@pytest.mark.parametrize("name", PLAIN)
def test_plain_manifests_pass_the_kubernetes_schemas(built: Any, name: str) -> None:
    import kubernetes_validate

    doc = built.documents[name]
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_schema_check_can_fail(built: Any) -> None:
    import kubernetes_validate

    broken = json.loads(json.dumps(built.documents["deployment.yaml"]))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"][
        "portt"] = 8080
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_deployment_probes_security_resources(built: Any) -> None:
    dep = built.documents["deployment.yaml"]
    assert dep["spec"]["replicas"] == 3
    c = _container(dep)
    assert c["image"] == "registry.example.com/ml/flowers:2"
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    sec = c["securityContext"]
    assert sec["runAsNonRoot"] is True and sec["runAsUser"] != 0
    assert sec["allowPrivilegeEscalation"] is False and sec["readOnlyRootFilesystem"] is True
    assert sec["capabilities"] == {"drop": ["ALL"]}
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind])
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "8080"
    assert ann["prometheus.io/path"] == "/metrics"
    # Every writable path is a volume: a read-only root can hold.
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert {"/tmp", "/var/lib/modelport", "/etc/modelport"} == set(mounts)
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["MODELPORT_STATE_DIR"] == "/var/lib/modelport"
    assert env["MODELPORT_SERVE_CONFIG"] == "/etc/modelport/serve.yaml"


def test_service_hpa_pdb_configmap_point_at_the_deployment(built: Any, tmp_path: Path
                                                           ) -> None:
    dep = built.documents["deployment.yaml"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    svc = built.documents["service.yaml"]["spec"]
    assert all(labels[k] == v for k, v in svc["selector"].items())
    assert svc["ports"][0]["targetPort"] == "http"
    hpa = built.documents["hpa.yaml"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    pdb = built.documents["pdb.yaml"]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    cm = built.documents["configmap.yaml"]
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["serve-config"]["configMap"]["name"] == cm["metadata"]["name"]
    (tmp_path / "serve.yaml").write_text(cm["data"]["serve.yaml"])
    spec = load_spec(tmp_path / "serve.yaml", [])
    assert [(e.name, m.uri) for e, m in zip(spec.endpoints(), spec.models, strict=True)] == [
        ("flowers", "models:/iris/2")]


def test_kserve_inference_service_structure(built: Any) -> None:
    isvc = built.documents[KSERVE]
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["name"] == "flowers"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (3, 9)
    c = _container(isvc)
    assert c["name"] == "kserve-container"  # KServe's required name for a custom predictor
    assert c["image"] == "registry.example.com/ml/flowers:2"
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # The container itself is an ordinary core/v1 Container: its schema applies.
    import kubernetes_validate

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [c]}}
    kubernetes_validate.validate(pod, KUBERNETES, strict=True)


def test_files_written_and_stdout_stream(source: SimpleNamespace, built: Any,
                                         tmp_path: Path) -> None:
    write(built, tmp_path / "k8s")
    names = {p.relative_to(tmp_path / "k8s").as_posix()
             for p in (tmp_path / "k8s").rglob("*") if p.is_file()}
    assert names == {*PLAIN, KSERVE, "README.md"}
    for name in (*PLAIN, KSERVE):
        assert yaml.safe_load((tmp_path / "k8s" / name).read_text()) == built.documents[name]
    stream = list(yaml.safe_load_all(built.plain_stream()))
    assert [d["kind"] for d in stream] == ["ConfigMap", "Deployment", "Service",
                                           "HorizontalPodAutoscaler", "PodDisruptionBudget"]


def test_defaults_namespace_and_names(source: SimpleNamespace) -> None:
    one = manifests(source.registry, "iris@champion", replicas=1, namespace="ml")
    dep = one.documents["deployment.yaml"]
    assert _container(dep)["image"] == "modelport-iris:3"
    assert all(d["metadata"]["namespace"] == "ml" for d in one.documents.values())
    assert one.documents["hpa.yaml"]["spec"]["maxReplicas"] == 3
    assert one.documents["pdb.yaml"]["spec"] == {
        "maxUnavailable": 1, "selector": {"matchLabels": dep["spec"]["selector"]["matchLabels"]}}


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"replicas": 0}, "--replicas must be"),
    ({"replicas": -2}, "--replicas must be"),
    ({"replicas": 3, "max_replicas": 2}, "--max-replicas must be"),
    ({"replicas": 1, "image": "Registry/Flowers:2"}, "not a valid image reference"),
    ({"replicas": 1, "image": "flowers:latest"}, "not pinned"),
    ({"replicas": 1, "image": "flowers"}, "not pinned"),
    ({"replicas": 1, "image": "ok:1", "namespace": "Bad_NS"}, "DNS-1123"),
])
def test_bad_arguments(source: SimpleNamespace, kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        manifests(source.registry, "flowers", **kwargs)


def test_code_running_models_need_trusted(source: SimpleNamespace) -> None:
    with pytest.raises(UntrustedModelError):
        manifests(source.registry, "pickled/1", replicas=1)
    ok = manifests(source.registry, "pickled/1", replicas=1, trusted=True)
    assert "trusted: true" in ok.documents["configmap.yaml"]["data"]["serve.yaml"]


@pytest.mark.e2e
def test_cli_exit_codes(source: SimpleNamespace, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "x.yaml").write_text("mine")
    runs = Cli().many(source.home, [
        ["build", "k8s", "flowers", "--replicas", "0"],
        ["build", "k8s", "flowers", "--replicas", "2", "--image", "bad image"],
        ["build", "k8s", "nosuch", "--replicas", "2"],
        ["build", "k8s", "flowers", "--replicas", "2", "--out", full],
        ["build", "k8s", "flowers", "--replicas", "2", "--out", tmp_path / "ok"],
        ["build", "k8s", "flowers", "--replicas", "2"],
    ])
    for run, code in zip(runs, (2, 2, 3, 2, 0, 0), strict=True):
        assert run.returncode == code, run
    assert sorted(p.name for p in full.iterdir()) == ["x.yaml"]
    assert (tmp_path / "ok" / "kserve" / "inferenceservice.yaml").is_file()
    kinds = [d["kind"] for d in yaml.safe_load_all(runs[-1].stdout)]
    assert kinds[1] == "Deployment" and len(kinds) == 5
