"""``modelport models ...``: list, show, register, alias, history, sign, verify, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modelport.cli.output import console, info, print_json, when
from modelport.cli.state import state
from modelport.errors import InvalidInputError
from modelport.registry.entities import ModelVersion
from modelport.uri import parse_uri

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--{what} expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="List this model's versions.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include deleted entries.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List models, or the versions of one model."""
    reg = state(ctx).control()
    items = reg.list(name, include_deleted=all_)
    if as_json:
        print_json([i.to_dict() for i in items])
        return
    if name is None:
        table = Table("name", "latest", "versions", "aliases", "updated (UTC)", "description")
        for m in items:
            aliases = ", ".join(f"{a}→{v}" for a, v in m.aliases.items())
            table.add_row(m.name + (" (deleted)" if m.deleted_at else ""),
                          str(m.latest_version or "-"), str(m.version_count), aliases,
                          when(m.updated_at), m.description)
    else:
        table = Table("version", "flavor", "aliases", "metrics", "created (UTC)", "by", "digest")
        for v in items:
            metrics = ", ".join(f"{k}={val:.4g}" for k, val in v.metrics.items())
            table.add_row(str(v.version) + (" (deleted)" if v.deleted_at else ""), v.flavor,
                          ", ".join(v.aliases), metrics, when(v.created_at), v.created_by,
                          v.artifact_digest[7:19])
    console().print(table)


def _show_version(v: ModelVersion) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # never crop a value (digests) on a narrow terminal
    rows = [
        ("uri", v.uri), ("flavor", v.flavor), ("aliases", ", ".join(v.aliases) or "-"),
        ("digest", v.artifact_digest), ("size", f"{v.artifact_size:,} bytes"),
        ("created", f"{when(v.created_at)} UTC by {v.created_by}"),
        ("metrics", ", ".join(f"{k}={val}" for k, val in v.metrics.items()) or "-"),
        ("params", ", ".join(f"{k}={val}" for k, val in v.params.items()) or "-"),
        ("tags", ", ".join(f"{k}={val}" for k, val in v.tags.items()) or "-"),
        ("training data", (v.training_data or {}).get("fingerprint", "-")),
        ("python", v.environment.get("python", "-")),
        ("libraries", ", ".join(f"{k} {val}" for k, val in
                                v.environment.get("libraries", {}).items()) or "-"),
        ("signature", _sig_text(v.signature)),
        ("signed", _signed_text(v)),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    console().print(table)


def _signed_text(v: ModelVersion) -> str:
    record = v.signing
    if record is None:
        return "-"
    return (f"key {record.get('key_id')} ({record.get('signed_by', '?')}, "
            f"{record.get('signed_at', '?')})")


def _sig_text(sig: dict | None) -> str:
    if not sig:
        return "-"
    inputs = sig.get("inputs", {})
    if inputs.get("type") == "dataframe":
        text = ", ".join(f"{c['name']}:{c['dtype']}" for c in inputs["columns"])
    else:
        text = f"{inputs.get('dtype')}{inputs.get('shape')}"
    return f"inputs({text})"


@app.command()
def show(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="NAME, NAME/VERSION, NAME@ALIAS or models:/...")],
    as_json: JsonOpt = False,
) -> None:
    """Show a model (NAME) or one version (NAME/VERSION, NAME@ALIAS)."""
    reg = state(ctx).control()
    parsed = parse_uri(uri)
    if parsed.version is None and parsed.alias is None and "/" not in uri.removeprefix("models:/"):
        model = reg.get_model(parsed.name)
        if as_json:
            print_json(model.to_dict())
        else:
            console().print(f"[bold]{model.name}[/]  latest {model.latest_version}  "
                            f"{model.version_count} versions  aliases "
                            + (", ".join(f"{a}→{v}" for a, v in model.aliases.items()) or "-"))
        return
    version = reg.get(uri)
    if as_json:
        print_json(version.to_dict())
    else:
        _show_version(version)


@app.command()
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    file: Annotated[Path, typer.Argument(help=".onnx, .skops, XGBoost .json/.ubj, LightGBM .txt, "
                                               ".pkl/.joblib (with --trusted)")],
    trusted: Annotated[bool, typer.Option("--trusted", help="Allow pickle/joblib files.")] = False,
    input_example: Annotated[Path | None, typer.Option(
        "--input-example", help="CSV/JSON/Parquet rows to infer the signature from.")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="KEY=VALUE")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="KEY=VALUE")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE")] = None,
    description: Annotated[str, typer.Option("--description")] = "",
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", help="Ed25519 private key (PEM) to sign the version with "
                           "[default: $MODELPORT_SIGNING_KEY if set].")] = None,
    training_data: Annotated[str | None, typer.Option(
        "--training-data", help="The features it was trained on: a CSV/Parquet file "
                                "(registered as dataset NAME-training) or datasets:/N/V; "
                                "profiled for drift and linked.")] = None,
    eval_data: Annotated[str | None, typer.Option(
        "--eval-data", help="Its evaluation data, linked as NAME-eval (file or URI).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a model file produced elsewhere; the flavor is detected from its content."""
    from modelport.control.facade import LocalControl
    from modelport.datafiles import read_table

    reg = state(ctx).control()
    example = read_table(input_example) if input_example else None
    metrics = {k: _number(k, v) for k, v in _pairs(metric, "metric").items()}
    common: dict[str, Any] = dict(
        trusted=trusted, input_example=example, metrics=metrics,
        params=_pairs(param, "param"), tags=_pairs(tag, "tag"), description=description,
        sign_key=sign_key)
    if training_data is None and eval_data is None:
        version = reg.register_file(name, file, **common)
    elif not isinstance(reg, LocalControl):
        raise InvalidInputError("--training-data and --eval-data work on a local registry "
                                "only: unset MODELPORT_URL, or link the data afterwards")
    else:
        version = reg.registry.register_file(
            name, file, training_data=_data_arg(training_data, "--training-data"),
            eval_data=_data_arg(eval_data, "--eval-data"), **common)
    if as_json:
        print_json(version.to_dict())
    else:
        signed = f", signed by key {version.signing['key_id']}" if version.signing else ""
        info(f"registered [bold]{version.uri}[/] "
             f"({version.flavor}, {version.artifact_digest[:19]}{signed})")


def _data_arg(value: str | None, flag: str) -> Any:
    """A dataset URI as given, or the frame of a CSV/Parquet/JSON file."""
    from modelport.datafiles import read_table

    if value is None or value.startswith("datasets:/"):
        return value
    path = Path(value)
    if not path.is_file():
        raise InvalidInputError(f"{flag} {value}: no such file (or give datasets:/NAME/VERSION)")
    return read_table(path)


def _number(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidInputError(f"--metric {key}: {value!r} is not a number") from None


@app.command()
def alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. champion.")],
    version: Annotated[int | None, typer.Argument(help="Version to point at.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history).")] = "",
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Point ALIAS of NAME at VERSION (or remove it with --delete)."""
    reg = state(ctx).control()
    if delete == (version is not None):
        raise InvalidInputError("give either a VERSION or --delete")
    if delete:
        event = reg.delete_alias(name, alias_name, reason=reason)
    else:
        assert version is not None
        event = reg.set_alias(name, alias_name, version, reason=reason)
    if as_json:
        print_json(event.to_dict())
    elif delete:
        info(f"removed {name}@{alias_name} (was version {event.from_version})")
    else:
        info(f"{name}@{alias_name} → version {event.to_version}"
             + (f" (was {event.from_version})" if event.from_version else ""))


@app.command()
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[str | None, typer.Option("--alias", help="Only this alias.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every alias move of a model: who, when, from which version to which, why."""
    events = state(ctx).control().history(name, alias_name)
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    table = Table("when (UTC)", "alias", "from", "to", "by", "reason")
    for e in events:
        table.add_row(when(e.at), e.alias, str(e.from_version or "-"),
                      str(e.to_version or "(removed)"), e.actor, e.reason)
    console().print(table)


@app.command()
def sign(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")],
    key: Annotated[Path | None, typer.Option(
        "--key", help="Ed25519 private key (PEM) [default: $MODELPORT_SIGNING_KEY].")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Replace a signature by another key.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sign an existing version (its name, number and artifact digest); audited."""
    version = state(ctx).registry().sign(uri, key, replace=replace)
    record = version.signing or {}
    if as_json:
        print_json({"uri": version.uri, "digest": version.artifact_digest,
                    "key_id": record.get("key_id"), "signed_by": record.get("signed_by"),
                    "signed_at": record.get("signed_at")})
    else:
        info(f"signed [bold]{version.uri}[/] ({version.artifact_digest[:19]}) with key "
             f"{record.get('key_id')}")


@app.command()
def verify(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")],
    key: Annotated[list[Path] | None, typer.Option(
        "--key", help="Trusted Ed25519 public key (PEM); repeat for several "
                      "[default: $MODELPORT_VERIFY_KEYS]. Then a signature by one is "
                      "required.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-read a version's artifact, check every file's sha256 digest, and check its
    signature against the trusted public keys."""
    report = state(ctx).registry().verify(uri, keys=key or None)
    if as_json:
        print_json({"uri": report.uri, "digest": report.digest, "files": report.files,
                    "bytes": report.bytes, "signature": report.signature,
                    "signed_by": report.signed_by, "ok": True})
        return
    sig = {"verified": f"; signature by trusted key {report.signed_by} verified",
           "unchecked": f"; signed by key {report.signed_by}, not checked (no --key or "
                        "MODELPORT_VERIFY_KEYS)",
           "unsigned": "; not signed"}[report.signature]
    info(f"[green]ok[/] {report.uri}: {report.files} files, {report.bytes:,} bytes match "
         f"{report.digest[:19]}{sig}")


@app.command()
def delete(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="NAME (whole model) or NAME/VERSION.")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Soft-delete a model or a version (kept in history; aliases on it are removed)."""
    if not yes and not typer.confirm(f"delete {target}?", default=False):
        raise typer.Exit(1)
    state(ctx).registry().delete(target, reason=reason)
    info(f"deleted {target}")
