"""``modelport build k8s``: manifests that run the image of ``build docker`` on Kubernetes.

Deployment (probes on the OIP health URLs, requests and limits, Prometheus scrape
annotations, a non-root, read-only, capability-free container), Service,
HorizontalPodAutoscaler (autoscaling/v2), PodDisruptionBudget (policy/v1) and a
ConfigMap holding serve.yaml; and, for KServe users instead of those, an
InferenceService (serving.kserve.io/v1beta1) with the same image as a custom predictor.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import modelport
from modelport.client import Registry
from modelport.errors import InvalidInputError
from modelport.export import common
from modelport.export.imageref import parse_image
from modelport.export.outdir import staged, write_text
from modelport.export.source import Source, resolve, slug

CONFIG_DIR = "/etc/modelport"
MAX_REPLICAS = 1000
#: Files applied together (``kubectl apply -f DIR``); KServe's is in a subfolder.
PLAIN = ("configmap.yaml", "deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml")
KSERVE = "kserve/inferenceservice.yaml"


@dataclass(frozen=True)
class K8sBuild:
    """The manifests of one endpoint, by file name."""

    source: Source
    image: str
    documents: dict[str, dict[str, Any]]

    def plain_stream(self) -> str:
        """The plain manifests as one multi-document YAML stream (``kubectl apply -f -``)."""
        return "".join(f"---\n{common.dump_yaml(self.documents[f])}" for f in PLAIN)

    def to_dict(self, out: Path | None) -> dict[str, Any]:
        """A JSON-ready summary (``--json``)."""
        return {"target": "k8s", "uri": self.source.uri, "endpoint": self.source.endpoint,
                "image": self.image, "out": str(out) if out else None,
                "files": sorted(self.documents)}


def manifests(registry: Registry, target: str, *, replicas: int, image: str | None = None,
              max_replicas: int | None = None, namespace: str | None = None,
              trusted: bool = False) -> K8sBuild:
    """The manifests for ``target`` (an endpoint or a URI); nothing is written."""
    if replicas < 1 or replicas > MAX_REPLICAS:
        raise InvalidInputError(f"--replicas must be 1-{MAX_REPLICAS}, got {replicas}")
    ceiling = max_replicas if max_replicas is not None else max(replicas * 3, replicas + 1)
    if ceiling < replicas or ceiling > MAX_REPLICAS:
        raise InvalidInputError(
            f"--max-replicas must be {replicas}-{MAX_REPLICAS} (at least --replicas), "
            f"got {ceiling}")
    if namespace is not None:
        _check_label(namespace, "--namespace")
    source = resolve(registry, target)
    common.check_trust(source, trusted)
    ref = str(parse_image(image)) if image else (
        f"modelport-{source.slug}:{source.version.version}")
    serve_yaml = common.dump_yaml(common.serve_config(source, trusted))
    k = _Kit(source, ref, namespace, serve_yaml)
    docs = {
        "configmap.yaml": k.configmap(),
        "deployment.yaml": k.deployment(replicas),
        "service.yaml": k.service(),
        "hpa.yaml": k.hpa(replicas, ceiling),
        "pdb.yaml": k.pdb(),
        KSERVE: k.inference_service(replicas, ceiling),
    }
    return K8sBuild(source, ref, docs)


def write(build: K8sBuild, out: Path, *, force: bool = False) -> None:
    """Write every manifest and a README into ``out`` (atomically)."""
    with staged(out, force=force) as stage:
        head = (f"# modelport {modelport.__version__}: {build.source.uri} as "
                f"{build.source.endpoint}\n")
        for name, doc in build.documents.items():
            write_text(stage / name, head + common.dump_yaml(doc))
        write_text(stage / "README.md", readme(build))


def _check_label(value: str, what: str) -> None:
    if len(value) > 63 or slug(value) != value:
        raise InvalidInputError(
            f"{what} {value[:80]!r} is not a DNS-1123 label (lowercase a-z 0-9 '-', "
            "at most 63, starting and ending alphanumeric)")


class _Kit:
    """Builds each manifest from the shared names, labels and container."""

    def __init__(self, source: Source, image: str, namespace: str | None,
                 serve_yaml: str) -> None:
        self.source = source
        self.image = image
        self.name = source.slug
        self.namespace = namespace
        self.serve_yaml = serve_yaml
        self.selector = {"app.kubernetes.io/name": "modelport",
                         "app.kubernetes.io/instance": self.name}
        self.labels = {**self.selector, "app.kubernetes.io/version": str(source.version.version),
                       "app.kubernetes.io/managed-by": "modelport",
                       "modelport.dev/model": _label_value(source.version.name)}

    def meta(self, name: str | None = None, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name or self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        out["labels"] = dict(self.labels)
        out.update(extra)
        return out

    def configmap(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": self.meta(f"{self.name}-serve"),
                "data": {"serve.yaml": self.serve_yaml}}

    def deployment(self, replicas: int) -> dict[str, Any]:
        checksum = hashlib.sha256(self.serve_yaml.encode()).hexdigest()
        container = {
            **self.container("modelport", read_only=True),
            "volumeMounts": [
                {"name": "serve-config", "mountPath": CONFIG_DIR, "readOnly": True},
                {"name": "state", "mountPath": common.STATE_DIR},
                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
            ],
        }
        container["env"].append({"name": "MODELPORT_SERVE_CONFIG",
                                 "value": f"{CONFIG_DIR}/serve.yaml"})
        return {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": self.meta(),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": dict(self.selector)},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": dict(self.labels), "annotations": {
                        "prometheus.io/scrape": "true", "prometheus.io/port": str(common.PORT),
                        "prometheus.io/path": "/metrics",
                        # A changed serve.yaml rolls the pods (the ConfigMap keeps its name).
                        "modelport.dev/serve-config-sha256": checksum}},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": self.pod_security(),
                        "terminationGracePeriodSeconds": 30,
                        "containers": [container],
                        "volumes": [
                            {"name": "serve-config",
                             "configMap": {"name": f"{self.name}-serve"}},
                            {"name": "state", "emptyDir": {}},
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
            },
        }

    def container(self, name: str, *, read_only: bool) -> dict[str, Any]:
        def probe(path: str, period: int, failures: int) -> dict[str, Any]:
            return {"httpGet": {"path": path, "port": common.PORT}, "periodSeconds": period,
                    "timeoutSeconds": 3, "failureThreshold": failures}

        return {
            "name": name, "image": self.image, "imagePullPolicy": "IfNotPresent",
            "args": ["serve"],
            "ports": [{"name": "http", "containerPort": common.PORT, "protocol": "TCP"}],
            "env": [
                {"name": "MODELPORT_SERVE_PORT", "value": str(common.PORT)},
                {"name": "MODELPORT_STATE_DIR", "value": common.STATE_DIR},
                # Extra serve flags (e.g. --workers 2). Token auth: see README.md.
                {"name": "MODELPORT_SERVE_ARGS", "value": ""},
            ],
            "resources": self.resources(),
            # Loading a large model takes a while: liveness only counts once it is up.
            "startupProbe": probe("/v2/health/live", 2, 90),
            "livenessProbe": probe("/v2/health/live", 10, 3),
            "readinessProbe": probe("/v2/health/ready", 5, 2),
            "securityContext": {
                "runAsNonRoot": True, "runAsUser": common.UID, "runAsGroup": common.UID,
                "allowPrivilegeEscalation": False, "privileged": False,
                "readOnlyRootFilesystem": read_only,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }

    def pod_security(self) -> dict[str, Any]:
        return {"runAsNonRoot": True, "runAsUser": common.UID, "runAsGroup": common.UID,
                "fsGroup": common.UID, "seccompProfile": {"type": "RuntimeDefault"}}

    def resources(self) -> dict[str, Any]:
        # A model takes a few times its artifact size in memory once loaded, plus the
        # server itself (~300 MiB with pandas and pyarrow imported).
        size_mib = -(-self.source.version.artifact_size // (1 << 20))
        request = max(512, 320 + 3 * size_mib)
        return {"requests": {"cpu": "500m", "memory": f"{request}Mi"},
                "limits": {"cpu": "2", "memory": f"{2 * request}Mi"}}

    def service(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": self.meta(),
                "spec": {"type": "ClusterIP", "selector": dict(self.selector),
                         "ports": [{"name": "http", "port": common.PORT,
                                    "targetPort": "http", "protocol": "TCP"}]}}

    def hpa(self, replicas: int, ceiling: int) -> dict[str, Any]:
        return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": self.meta(),
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": self.name},
                         "minReplicas": replicas, "maxReplicas": ceiling,
                         "metrics": [{"type": "Resource", "resource": {
                             "name": "cpu",
                             "target": {"type": "Utilization", "averageUtilization": 70}}}]}}

    def pdb(self) -> dict[str, Any]:
        # maxUnavailable rather than minAvailable: with one replica, minAvailable 1 would
        # block every node drain forever.
        return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": self.meta(),
                "spec": {"maxUnavailable": 1,
                         "selector": {"matchLabels": dict(self.selector)}}}

    def inference_service(self, replicas: int, ceiling: int) -> dict[str, Any]:
        # KServe's custom predictor: the container must be called kserve-container. The
        # image's own serve.yaml is used and its root stays writable (Knative does not
        # allow every volume type).
        container = self.container("kserve-container", read_only=False)
        container["ports"] = [{"containerPort": common.PORT, "protocol": "TCP"}]
        return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                "metadata": self.meta(annotations={
                    "serving.kserve.io/enable-prometheus-scraping": "true",
                    "prometheus.io/port": str(common.PORT),
                    "prometheus.io/path": "/metrics"}),
                "spec": {"predictor": {"minReplicas": replicas, "maxReplicas": ceiling,
                                       "containers": [container]}}}


def _label_value(text: str) -> str:
    """A label value: at most 63 of ``[A-Za-z0-9._-]``, alphanumeric at both ends."""
    return text[:63].strip("._-") or "model"


def readme(build: K8sBuild) -> str:
    """How to apply the manifests, and what they assume."""
    s = build.source
    return f"""\
# {s.endpoint} on Kubernetes

Written by `modelport build k8s {s.given}` (modelport {modelport.__version__}) for
{s.uri} ({s.version.flavor}, `{s.version.artifact_digest}`), image `{build.image}`.
Build and push that image first: `modelport build docker {s.given} --out ctx` then
`docker build -t {build.image} ctx && docker push {build.image}`.

```bash
kubectl apply -f .                   # ConfigMap, Deployment, Service, HPA, PDB
kubectl apply -f kserve/             # or: the KServe InferenceService instead
```

- Probes: startup and liveness `GET /v2/health/live`, readiness `GET /v2/health/ready`
  (both open without a token). Port {common.PORT}, Service `{s.slug}:{common.PORT}`.
- Prometheus: pods are annotated `prometheus.io/scrape: "true"` (path `/metrics`).
  With token auth, `/metrics` needs a reader token: give the scrape job one.
- Security: user {common.UID}, `runAsNonRoot`, no privilege escalation, all capabilities
  dropped, RuntimeDefault seccomp, read-only root filesystem (writes go to the
  emptyDirs at `{common.STATE_DIR}` and `/tmp`), no service-account token.
- serve.yaml comes from the ConfigMap `{s.slug}-serve`; pods roll when it changes (its
  checksum is a pod annotation).
- HPA on CPU (70 %), between `minReplicas` and `maxReplicas`; the PDB lets one pod go
  at a time (with one replica, a drain takes the endpoint down briefly).

## Authentication

Each pod has its own copy of the image's registry, so tokens made in one pod are not in
another. Either set `MODELPORT_DATABASE_URL` (from a Secret) to the team registry that
holds the tokens, or put an authenticating gateway in front and add the env
`MODELPORT_INSECURE_NO_AUTH: "1"` to the container (serve then runs without token auth,
on purpose). As generated, neither is set: a modelport with token auth refuses to
start without tokens rather than serve the network unauthenticated.

## KServe

`kserve/inferenceservice.yaml` runs the same image as a custom predictor
(`kserve-container`), with the same probes and security context except a writable
root filesystem; it serves the image's own serve.yaml. It is a CRD: the tests check its
structure by hand, not against a cluster's schema.
"""
