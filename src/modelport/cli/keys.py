"""``modelport keys ...``: make an Ed25519 key pair for signing versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelport.cli.output import info, print_json

app = typer.Typer(no_args_is_help=True)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder for NAME.key and NAME.pub.")],
    name: Annotated[str, typer.Option("--name", help="File name stem.")] = "modelport",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing pair.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Write an Ed25519 private key (NAME.key, mode 0600) and its public key (NAME.pub).

    Sign with the private key (--sign-key, MODELPORT_SIGNING_KEY); give servers and
    `models verify` the public key (serve.yaml security.verify_keys,
    MODELPORT_VERIFY_KEYS). Neither is stored in the registry.
    """
    from modelport.artifacts.signing import generate_key_pair

    private, public, key_id = generate_key_pair(out, name, force=force)
    if as_json:
        print_json({"private_key": str(private), "public_key": str(public), "key_id": key_id})
        return
    info(f"wrote {private} (private, 0600) and {public} (public); key id {key_id}")
