"""``modelport convert``: a version → ONNX (optionally int8-quantized) or PMML, checked,
registered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from modelport.cli.output import console, info, print_json
from modelport.cli.state import state
from modelport.errors import GateFailedError


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _print(data: dict[str, Any]) -> None:
    out = console()
    table = Table("rows", "checked on", "label agreement", "max abs diff", "verdict")
    for name, c in data["checks"].items():
        agree = c["label_agreement"]
        table.add_row(f"{c['rows']:,}", name, "-" if agree is None else f"{agree:.2%}",
                      _number(c["max_abs_diff"], 3),
                      "[green]equivalent[/]" if c["passed"] else f"[red]{escape(c['detail'])}[/]")
    out.print(f"{escape(data['source'])} → {data['target']} ({data['precision']} inputs)")
    out.print(table)
    q = data["quantized"]
    if q:
        side = Table("", "ONNX", "ONNX int8", "change")
        side.add_row("size (bytes)", f"{q['bytes_before']:,}", f"{q['bytes_after']:,}",
                     f"{q['bytes_after'] / q['bytes_before'] - 1:+.1%}")
        side.add_row("1-row latency (ms)", _number(q["latency_ms_before"]),
                     _number(q["latency_ms_after"]),
                     f"{q['latency_ms_after'] / q['latency_ms_before'] - 1:+.1%}")
        if q["accuracy_before"] is not None:
            side.add_row("accuracy", _number(q["accuracy_before"]), _number(q["accuracy_after"]),
                         f"{q['accuracy_after'] - q['accuracy_before']:+.4f}")
        out.print(side)


def convert(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="The version to convert: iris/3, iris@champion.")],
    to: Annotated[str, typer.Option(
        "--to", help="Target format: onnx (onnxruntime) or pmml (sklearn2pmml, "
                     "evaluated by JPMML; needs Java).")] = "onnx",
    data: Annotated[Path | None, typer.Option(
        "--data", help="Also check on these rows (CSV or Parquet).")] = None,
    target: Annotated[str | None, typer.Option(
        "--target", help="The label column of --data (dropped before predicting; "
                         "used for the accuracy of --quantize).")] = None,
    tolerance: Annotated[float | None, typer.Option(
        "--tolerance", help="Largest absolute difference allowed for numeric outputs "
                            "(default 1e-9 with double inputs, 1e-4 with float).")] = None,
    min_agreement: Annotated[float, typer.Option(
        "--min-agreement", help="Share of labels that must agree (0-1).")] = 1.0,
    quantize: Annotated[bool, typer.Option(
        "--quantize", help="Register the int8 dynamically quantized graph (onnx only); "
                           "report size, latency and accuracy side by side.")] = False,
    trusted: Annotated[bool, typer.Option(
        "--trusted", help="The source is a pickle or custom-code model you trust.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Convert a version to ONNX or PMML; register it (linked to its source) only if
    equivalent."""
    from modelport.convert.service import convert as run

    try:
        result = run(state(ctx).registry(), uri, to=to, data=data, target=target,
                     tolerance=tolerance, min_agreement=min_agreement, quantized=quantize,
                     trusted=trusted)
    except GateFailedError as exc:
        report = exc.details.get("report")
        if isinstance(report, dict):
            print_json(report) if as_json else _print(report)
        raise
    data_out = result.to_dict()
    if as_json:
        print_json(data_out)
        return
    _print(data_out)
    info(f"[green]registered {escape(data_out['version'])}[/] (tags converted_from="
         f"{escape(result.source)}, conversion={result.target})")
