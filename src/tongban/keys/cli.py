"""`tongban keys …`: this node's signing keys."""

from __future__ import annotations

from typing import Annotated

import typer

from tongban.kernel.node import cli_node
from tongban.keys import service as keys

app = typer.Typer(help="Signing keys of this node", no_args_is_help=True)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    purpose: Annotated[str | None, typer.Option(help="licence, node, audit or root")] = None,
) -> None:
    """List the keys this node holds or knows, newest last."""
    with cli_node(ctx).transaction() as session:
        for row in keys.public_rows(session, purpose):
            state = "withdrawn" if row.not_after else "retired" if row.retired_at else "active"
            own = "private" if row.private_pem else "public-only"
            typer.echo(f"{row.kid}  {row.purpose:8} {row.owner:10} {row.alg:6} {state:9} {own}")


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    purpose: Annotated[str, typer.Argument(help="licence, node, audit or root")],
    owner: Annotated[str, typer.Argument(help="jurisdiction code, node id or 'federation'")],
    alg: Annotated[
        str | None, typer.Option(help="EdDSA or SM2 (default: the current key's)")
    ] = None,
) -> None:
    """Start a new key; the old one stops signing but keeps verifying what it signed."""
    with cli_node(ctx).transaction() as session:
        row = keys.rotate(session, purpose, owner, alg)
        typer.echo(f"new {row.purpose} key for {row.owner}: {row.kid} ({row.alg})")
