"""Wire protocols. Each module only translates: bytes → ``InferenceRequest``, and
``InferenceResponse`` / errors → bytes. None imports flavors, the registry or artifacts.

- ``oip``: Open Inference Protocol (KServe V2) REST, with Triton's binary tensor extension.
- ``mlflow``: MLflow scoring server (``/invocations``).
- ``kserve_v1``: KServe V1 / TF-Serving (``:predict`` with ``instances``).
- ``simple``: ``POST /predict`` with ``{"features": [[...]]}``.
"""
