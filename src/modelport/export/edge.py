"""``modelport build edge``: an ONNX model with a single-file runner for devices.

The folder holds ``model.onnx`` (as stored, or converted by ``modelport.convert`` and
checked), ``model.json``
(input columns, the source and the equivalence figures), ``predict.py`` (onnxruntime
and numpy only, no modelport), ``requirements.txt`` pinned to the onnxruntime and numpy
the check ran with, ``example.json`` (the input example, when there is one), a README
and ``build.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import modelport
from modelport.artifacts.bundle import Bundle
from modelport.client import Registry
from modelport.errors import InvalidInputError, UnsupportedModelError
from modelport.export import common, onnxconv
from modelport.export.outdir import check_destination, staged, write_text
from modelport.export.source import Source, resolve

RUNTIME = ("onnxruntime", "numpy")
MAX_CHECK_ROWS = 100_000


@dataclass(frozen=True)
class EdgeBuild:
    """What ``build_edge`` wrote."""

    source: Source
    out: Path
    converted: onnxconv.Converted
    requirements: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``--json``)."""
        return {"target": "edge", "uri": self.source.uri, "out": str(self.out),
                "onnx_bytes": len(self.converted.data), "check": self.converted.to_dict(),
                "requirements": self.requirements}


def runtime_pins() -> dict[str, str]:
    """onnxruntime and numpy as installed here (the versions the check ran with)."""
    pins = {}
    for dist in RUNTIME:
        try:
            pins[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            raise UnsupportedModelError(
                f"edge bundles need {dist} to check the model: install modelport[onnx]"
            ) from None
    return pins


def build_edge(registry: Registry, target: str, out: Path, *, force: bool = False,
               check_data: Path | None = None) -> EdgeBuild:
    """Write the edge bundle of ``target`` (a URI or an endpoint) into ``out``; the ONNX
    graph is checked on the input example and on ``check_data`` (CSV, JSON, Parquet;
    its first MAX_CHECK_ROWS rows), when given."""
    source = resolve(registry, target)
    check_destination(out, force=force)  # before a conversion that may take a while
    pins = runtime_pins()
    rows = _read_check_rows(check_data) if check_data is not None else None
    if source.version.flavor not in (*onnxconv.CONVERTIBLE, "onnx"):
        raise UnsupportedModelError(
            f"{source.uri} is a {source.version.flavor} model; {onnxconv.supported()}")
    # skops, the boosters' native formats and ONNX graphs run no code: nothing to trust.
    model = registry.load_model(source.uri)
    stored = None
    if source.version.flavor == "onnx":
        stored = Bundle(registry.artifacts, source.version.artifact_digest).read("model.onnx")
    converted = onnxconv.to_onnx(model, stored, rows)
    columns = onnxconv.numeric_columns(model.signature)
    meta = {"inputs": columns, "outputs": (model.signature or {}).get("outputs"),
            "source": {"uri": source.uri, "flavor": source.version.flavor,
                       "artifact_digest": source.version.artifact_digest},
            "check": converted.to_dict()}
    with staged(out, force=force) as stage:
        (stage / "model.onnx").write_bytes(converted.data)
        write_text(stage / "model.json", common.dump_json(meta))
        write_text(stage / "predict.py", _runner(), 0o755)
        write_text(stage / "requirements.txt",
                   "".join(f"{name}=={ver}\n" for name, ver in pins.items()))
        if model.input_example is not None:
            write_text(stage / "example.json", common.dump_json(
                {"features": _rows(model.validate(model.input_example))}))
        write_text(stage / "README.md", readme(source, converted, pins, columns))
        write_text(stage / "build.json", common.dump_json(common.build_record(
            source, "edge", check=converted.to_dict(), requirements=pins)))
    return EdgeBuild(source, out, converted, pins)


def _read_check_rows(path: Path) -> Any:
    from modelport.datafiles import iter_table

    first = next(iter_table(path, MAX_CHECK_ROWS), None)
    if first is None or len(first) == 0:
        raise InvalidInputError(f"--check-data {path} holds no rows")
    return first


def _runner() -> str:
    return resources.files("modelport.export.files").joinpath("predict.py").read_text("utf-8")


def _rows(data: Any) -> list[list[Any]]:
    import numpy as np

    return np.asarray(data).tolist()


def readme(source: Source, converted: onnxconv.Converted, pins: dict[str, str],
           columns: list[dict[str, str]]) -> str:
    """How to run the bundle and how it was checked."""
    reqs = " ".join(f"{k}=={v}" for k, v in pins.items())
    cols = ", ".join(f"`{col['name']}` ({col['dtype']})" for col in columns)
    return f"""\
# {source.version.name} {source.version.version} at the edge

Written by `modelport build edge {source.given}` (modelport {modelport.__version__}) from
{source.uri} ({source.version.flavor}, `{source.version.artifact_digest}`).
The ONNX graph is {converted.how}; {check_sentence(converted)}.

```bash
python -m venv .venv && .venv/bin/pip install -r requirements.txt   # {reqs}
.venv/bin/python predict.py example.json          # {{"predictions": [...]}}
.venv/bin/python predict.py rows.csv --format csv # one prediction per line
```

Input columns, in order: {cols}. CSV needs a header row; JSON may be rows
(`[[...], ...]`), records (`[{{"col": ...}}, ...]`) or `{{"features": ...}}`; records
and headers are matched by name. `--all-outputs` adds every graph output (for
classifiers, the probabilities). No modelport is needed on the device.
"""


def check_sentence(converted: onnxconv.Converted) -> str:
    """How the graph was checked, in words (README and the CLI's summary)."""
    c = converted.check
    if c is None:
        return "not checked: the version has no input example (give --check-data)"
    figure = (f"{c.label_agreement:.0%} of labels agree" if c.label_agreement is not None
              else f"max abs diff {c.max_abs_diff:.3g} (tolerance {c.tolerance:g})")
    return (f"on {c.rows} rows (the input example and any --check-data) it agrees with the "
            f"registered model: {figure}")
