"""Run an ONNX model on CSV or JSON rows; print its predictions (onnxruntime + numpy only).

Written by ``modelport build edge``; it needs nothing from modelport::

    python predict.py rows.csv                 # CSV with a header row
    python predict.py rows.json                # [[...], ...], [{...}, ...] or {"features": ...}
    cat rows.json | python predict.py -        # JSON on stdin
    python predict.py rows.csv --format csv    # one prediction per line
    python predict.py rows.csv --all-outputs   # every graph output (e.g. probabilities)

``model.onnx`` and ``model.json`` (the input columns, in order) are read from this
script's folder unless ``--model`` names another ONNX file. Records and CSV headers are
matched to the columns by name; plain rows are taken in column order. Exit 2 on bad
input, with one ``error:`` line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

HERE = Path(__file__).resolve().parent
DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": object,
}
ROW_KEYS = ("features", "instances", "inputs", "dataframe_records")


class BadInput(Exception):
    """The input cannot be turned into the model's inputs."""


def read_rows(source: str) -> tuple[list[str] | None, list[list[Any]]]:
    """(column names or None, rows) from a CSV/JSON file or ``-`` (JSON on stdin)."""
    if source == "-":
        return rows_from_json(sys.stdin.read())
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read {source}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".csv":
        return rows_from_csv(text)
    return rows_from_json(text)


def rows_from_csv(text: str) -> tuple[list[str] | None, list[list[Any]]]:
    """Rows of a CSV with a header row."""
    table = [row for row in csv.reader(io.StringIO(text)) if row]
    if not table:
        raise BadInput("the CSV file is empty")
    return [h.strip() for h in table[0]], table[1:]


def rows_from_json(text: str) -> tuple[list[str] | None, list[list[Any]]]:
    """Rows of ``[[...]]``, ``[{...}]``, one flat row, or an object with a rows key."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"not JSON: {exc}") from None
    if isinstance(data, dict):
        key = next((k for k in ROW_KEYS if k in data), None)
        if key is None:
            raise BadInput(f"a JSON object needs one of the keys {', '.join(ROW_KEYS)}")
        data = data[key]
    if not isinstance(data, list) or not data:
        raise BadInput("expected a non-empty JSON array of rows or records")
    if all(isinstance(r, dict) for r in data):
        names = list(data[0])
        return names, [[r.get(n) for n in names] for r in data]
    if all(isinstance(r, list) for r in data):
        return None, data
    if not any(isinstance(r, (list, dict)) for r in data):
        return None, [data]  # one flat row
    raise BadInput("mix of rows and records: send one kind")


def order(names: list[str] | None, rows: list[list[Any]], columns: list[str]
          ) -> list[list[Any]]:
    """Rows with their values in the model's column order."""
    if names is None or not columns:
        width = len(columns) if columns else len(rows[0])
        bad = [i for i, r in enumerate(rows) if len(r) != width]
        if bad:
            raise BadInput(f"row {bad[0]} has {len(rows[bad[0]])} values, expected {width}")
        return rows
    missing = [c for c in columns if c not in names]
    if missing:
        raise BadInput(f"missing column(s): {', '.join(missing)} (expected {', '.join(columns)})")
    index = [names.index(c) for c in columns]
    return [[row[i] if i < len(row) else None for i in index] for row in rows]


def cast(values: list[list[Any]], node: Any) -> Any:
    """A 2-D array of ``values`` in the dtype the graph input wants."""
    dtype = DTYPES.get(node.type, np.float32)
    try:
        if dtype is object:
            return np.array(values, dtype=object)
        return np.array([[_number(v) for v in row] for row in values], dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"input {node.name!r} ({node.type}): {exc}") from None


def _number(value: Any) -> float:
    if value is None or value == "":
        return float("nan")
    return float(value)


def feed(session: Any, rows: list[list[Any]], columns: list[str]) -> dict[str, Any]:
    """Input tensors: one 2-D tensor, or one column each when the graph names them so."""
    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    if len(inputs) > 1 and set(names) <= set(columns):
        return {i.name: cast([[r[columns.index(i.name)]] for r in rows], i) for i in inputs}
    if len(inputs) > 1:
        raise BadInput(f"the model has inputs {names}; name the columns so in model.json")
    return {inputs[0].name: cast(rows, inputs[0])}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, predict, print; 2 on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="a .csv or .json file, or - for JSON on stdin")
    parser.add_argument("--model", type=Path, default=HERE / "model.onnx")
    parser.add_argument("--format", choices=("json", "csv"), default="json")
    parser.add_argument("--all-outputs", action="store_true",
                        help="print every output of the graph, not only the first")
    args = parser.parse_args(argv)
    meta_path = args.model.with_name("model.json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    columns = [c["name"] for c in meta.get("inputs", [])]
    try:
        session = onnxruntime.InferenceSession(str(args.model),
                                               providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own, undocumented exception types
        print(f"error: cannot load {args.model}: {exc}", file=sys.stderr)
        return 1
    try:
        names, rows = read_rows(args.input)
        rows = order(names, rows, columns)
        tensors = feed(session, rows, columns or [i.name for i in session.get_inputs()])
        try:
            outputs = session.run(None, tensors)
        except Exception as exc:  # wrong shape or type for the graph: the input's fault
            raise BadInput(f"the model refuses this input: {exc}") from None
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    labels = np.asarray(outputs[0])
    predictions = labels.reshape(len(labels), -1)[:, 0] if labels.ndim > 1 and \
        labels.shape[1] == 1 else labels
    if args.format == "csv":
        for value in predictions.tolist():
            print(json.dumps(value) if isinstance(value, list) else value)
        return 0
    result: dict[str, Any] = {"predictions": predictions.tolist()}
    if args.all_outputs:
        result["outputs"] = {o.name: np.asarray(v).tolist()
                             for o, v in zip(session.get_outputs(), outputs, strict=True)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
