"""Pieces every target shares: the serve.yaml, the build record, YAML and trust checks."""

from __future__ import annotations

import platform
from typing import Any

import modelport
from modelport.artifacts.bundle import Bundle
from modelport.client import Registry
from modelport.errors import UntrustedModelError
from modelport.export.source import Source

#: The container's user and group (no passwd lookup needed; not root, not 1000).
UID = 10001
PORT = 8080
STATE_DIR = "/var/lib/modelport"


def check_trust(source: Source, trusted: bool) -> None:
    """A version whose loading runs code is packed only with ``--trusted``."""
    if source.runs_code and not trusted:
        raise UntrustedModelError(
            f"{source.uri} is a {source.version.flavor} model: loading it runs code from its "
            "artifact, and the image would do so on every start. Pass --trusted if you "
            "trust its author")


def serve_config(source: Source, trusted: bool) -> dict[str, Any]:
    """``serve.yaml`` of the image: the pinned version under the endpoint's name."""
    return {"models": [{"uri": source.uri, "name": source.endpoint,
                        "trusted": bool(trusted and source.runs_code)}]}


def bundle_files(registry: Registry, source: Source) -> dict[str, dict[str, Any]]:
    """The version's artifact files with their digests and sizes (from its manifest)."""
    bundle = Bundle(registry.artifacts, source.version.artifact_digest)
    return {name: dict(entry) for name, entry in sorted(bundle.manifest["files"].items())}


def build_record(source: Source, target: str, **extra: Any) -> dict[str, Any]:
    """What was built, from what, by which modelport (``build.json`` of every output)."""
    v = source.version
    return {
        "target": target,
        "built_by": f"modelport {modelport.__version__}",
        "built_with_python": platform.python_version(),
        "source": {"given": source.given, "uri": v.uri, "endpoint": source.endpoint,
                   "alias": source.alias, "flavor": v.flavor,
                   "artifact_digest": v.artifact_digest, "artifact_size": v.artifact_size,
                   "environment": v.environment},
        **extra,
    }


def dump_yaml(doc: Any) -> str:
    """Block-style YAML in the order given (what people read and diff); text with line
    breaks (a ConfigMap's serve.yaml) as a literal ``|`` block."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return str(yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=False,
                         width=100))


def dump_json(doc: Any) -> str:
    """Indented JSON with a final newline."""
    import orjson

    return str(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()) + "\n"
