"""``modelport build docker|k8s|edge``: pack a version for a deployment target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelport.cli.output import info, print_json
from modelport.cli.state import state

app = typer.Typer(no_args_is_help=True)

TargetArg = Annotated[str, typer.Argument(
    metavar="ENDPOINT_OR_URI",
    help="An endpoint with a deployment (its stable version, served under the endpoint's "
         "name) or a model URI: iris/3, iris@champion, models:/iris/3.")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Replace the content of a non-empty --out folder.")]
TrustedOpt = Annotated[bool, typer.Option(
    "--trusted", help="Allow a model whose loading runs code (pickle, PythonModel).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary for scripts.")]


@app.command("docker")
def docker(
    ctx: typer.Context,
    target: TargetArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="The build context folder.")],
    base_image: Annotated[str | None, typer.Option(
        "--base-image", help="Pinned Python base image (tag or @sha256 digest); default "
                             "python:X.Y.Z-slim-bookworm of the version's Python.")] = None,
    force: ForceOpt = False,
    trusted: TrustedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a Docker build context that serves the version (`docker build DIR`)."""
    from modelport.export.docker import build_docker

    built = build_docker(state(ctx).registry(), target, out, force=force, trusted=trusted,
                         base=base_image)
    if as_json:
        print_json(built.to_dict())
        return
    info(f"wrote the build context of {built.source.uri} (endpoint "
         f"{escape(built.source.endpoint)}) to {escape(str(out))}")
    for note in built.notes:
        info(f"[yellow]note:[/] {escape(note)}")
    info(f"next: docker build -t {built.image_hint} {escape(str(out))}")


@app.command("k8s")
def k8s(
    ctx: typer.Context,
    target: TargetArg,
    replicas: Annotated[int, typer.Option("--replicas", help="Replicas (and HPA minimum).")],
    image: Annotated[str | None, typer.Option(
        "--image", help="The image built from `build docker`, pinned by tag or digest; "
                        "default modelport-ENDPOINT:VERSION.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for the manifests; default: print the plain ones "
                            "as one YAML stream on stdout.")] = None,
    max_replicas: Annotated[int | None, typer.Option(
        "--max-replicas", help="HPA maximum (default 3 x --replicas).")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    force: ForceOpt = False,
    trusted: TrustedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write Deployment, Service, HPA, PDB, ConfigMap and a KServe InferenceService."""
    from modelport.export.k8s import manifests, write

    built = manifests(state(ctx).registry(), target, replicas=replicas, image=image,
                      max_replicas=max_replicas, namespace=namespace, trusted=trusted)
    if out is None:
        if as_json:
            print_json(built.to_dict(None))
            return
        sys.stdout.write(built.plain_stream())
        return
    write(built, out, force=force)
    if as_json:
        print_json(built.to_dict(out))
        return
    info(f"wrote Kubernetes manifests of {built.source.uri} (image {escape(built.image)}) "
         f"to {escape(str(out))}")
    info(f"next: kubectl apply -f {escape(str(out))}   (KServe: kubectl apply -f "
         f"{escape(str(out / 'kserve'))})")


@app.command("edge")
def edge(
    ctx: typer.Context,
    target: TargetArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="The bundle folder.")],
    check_data: Annotated[Path | None, typer.Option(
        "--check-data", help="More rows (CSV, JSON, Parquet) on which the ONNX graph must "
                             "agree with the model, besides the input example.")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write an ONNX model with a standalone runner (onnxruntime + numpy, no modelport)."""
    from modelport.export.edge import build_edge, check_sentence

    built = build_edge(state(ctx).registry(), target, out, force=force,
                       check_data=check_data)
    if as_json:
        print_json(built.to_dict())
        return
    info(f"wrote the edge bundle of {built.source.uri} to {escape(str(out))}: the graph is "
         f"{built.converted.how}; {check_sentence(built.converted)}")
