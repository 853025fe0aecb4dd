"""Deployment targets: a version packed for Docker, Kubernetes (and KServe), or the edge.

Each target writes one folder, atomically (built beside it, then renamed into place):

- ``build_docker``: a Docker build context serving the version (``export.docker``);
- ``build_k8s``: Deployment, Service, HPA, PDB, ConfigMap and a KServe InferenceService
  for that image (``export.k8s``);
- ``build_edge``: the model as ONNX with a standalone runner (``export.edge``).

Targets read the registry through ``modelport.client.Registry`` only.
"""

from modelport.export.docker import DockerBuild, build_docker
from modelport.export.source import Source, resolve

__all__ = ["DockerBuild", "Source", "build_docker", "resolve"]
