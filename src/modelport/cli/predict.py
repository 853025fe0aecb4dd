"""``modelport predict``: batch scoring of a CSV, JSON or Parquet file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from modelport.cli.output import info, print_json
from modelport.cli.state import state
from modelport.datafiles import SUPPORTED, count_rows, iter_table
from modelport.errors import InvalidInputError
from modelport.scoring.frames import predictions_frame


class _Writer:
    """Writes prediction chunks to CSV, JSON or Parquet via a temp file and a rename."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.suffix = path.suffix.lower()
        if self.suffix not in SUPPORTED:
            raise InvalidInputError(f"unsupported output type {self.suffix or '(none)'}; "
                                    f"use one of {', '.join(SUPPORTED)}")
        if not path.parent.is_dir():
            raise InvalidInputError(f"output folder not found: {path.parent}")
        self.tmp = path.with_name(f".{path.name}.partial")
        self._parquet: Any = None
        self._parts: list[Any] = []
        self._first = True

    def write(self, frame: Any) -> None:
        if self.suffix == ".csv":
            frame.to_csv(self.tmp, mode="w" if self._first else "a", header=self._first,
                         index=False)
        elif self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            self._parquet.write_table(table)
        else:
            self._parts.append(frame)
        self._first = False

    def commit(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self.suffix == ".json":
            import pandas as pd

            frame = pd.concat(self._parts, ignore_index=True)
            self.tmp.write_text(frame.to_json(orient="records"))
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.tmp.unlink(missing_ok=True)


def _check_input(path: Path) -> None:
    """Refuse an unusable input file before the (possibly slow) model load."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise InvalidInputError(f"unsupported input type {suffix or '(none)'} for {path.name}; "
                                f"use one of {', '.join(SUPPORTED)}")
    if not path.is_file():
        raise InvalidInputError(f"input file not found: {path}")


def _row_count(path: Path) -> int | None:
    """Rows in the input for the progress bar; None when unknown or unreadable."""
    try:
        return count_rows(path)
    except Exception:  # missing or malformed input: iter_table reports it as InvalidInputError
        return None


def predict(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(metavar="MODEL_URI",
                                             help="models:/NAME/VERSION, NAME@ALIAS, ...")],
    input_file: Annotated[Path, typer.Option("--input", "-i", help="CSV, JSON or Parquet.")],
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Where to write predictions.")] = None,
    trusted: Annotated[bool, typer.Option(
        "--trusted", help="Allow models that run code (pickle, Python).")] = False,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1, help="Rows scored per call (default 10,000; 100,000 on Ray).")
    ] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="local (this process) or ray (Ray Data: a file or folder of "
                         "Parquet/CSV, larger than memory; --output is a folder).")] = "local",
    actors: Annotated[int | None, typer.Option(
        "--actors", min=1, help="Ray actors scoring in parallel (default: one per CPU).")
    ] = None,
    retries: Annotated[int, typer.Option(
        "--retries", min=0, max=100,
        help="Ray: times a batch is retried when its worker dies (a lost node).")] = 3,
) -> None:
    """Score a file with a registered model; predictions go to --output or stdout (JSON)."""
    if engine == "ray":
        _predict_on_ray(ctx, model_uri, input_file, output, trusted, batch_size, actors,
                        retries)
        return
    if engine != "local":
        raise InvalidInputError(f"--engine {engine!r}: use local or ray")
    batch_size = batch_size or 10_000
    # Bad arguments fail fast, before the model load that may take seconds.
    _check_input(input_file)
    writer = _Writer(output) if output else None
    model = state(ctx).registry().load_model(model_uri, trusted=trusted)
    total = _row_count(input_file)
    collected: list[Any] = []
    done = 0
    try:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(), transient=True,
                      disable=total is None or total < 5 * batch_size,
                      console=Console(stderr=True)) as progress:
            task = progress.add_task(f"scoring with {model.version.uri}", total=total)
            for chunk in iter_table(input_file, batch_size):
                frame = predictions_frame(model.predict(chunk))
                if writer:
                    writer.write(frame)
                else:
                    collected.append(frame)
                done += len(chunk)
                progress.update(task, completed=done)
        if writer:
            writer.commit()
    except BaseException:
        if writer:
            writer.abort()
        raise
    if writer:
        info(f"wrote {done:,} predictions of {model.version.uri} to {escape(str(output))}")
    else:
        import pandas as pd

        frame = pd.concat(collected, ignore_index=True) if collected else pd.DataFrame()
        cols = list(frame.columns)
        preds = frame[cols[0]].tolist() if cols == ["prediction"] else frame.to_dict("records")
        print_json({"model": model.version.uri, "predictions": preds})


def _predict_on_ray(ctx: typer.Context, uri: str, input_path: Path, output: Path | None,
                    trusted: bool, batch_size: int | None, actors: int | None,
                    retries: int) -> None:
    from modelport.scoring.ray_batch import score

    if output is None:
        raise InvalidInputError("--engine ray writes Parquet files: give --output FOLDER")
    st = state(ctx)
    version = st.registry().get(uri)  # unknown URIs fail here, before Ray starts
    settings = st.settings()
    result = score({"home": str(settings.home), "database_url": settings.database_url,
                    "artifacts": settings.artifacts}, version.uri, input_path, output,
                   trusted=trusted, batch_size=batch_size or 100_000, actors=actors,
                   retries=retries)
    info(f"wrote {result.rows:,} predictions of {result.model} to {escape(str(output))} "
         f"({result.files} files, {result.rows_per_second:,.0f} rows/s)")
