"""`tongban audit …` commands."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="The tamper-evident audit chain", no_args_is_help=True)


@app.command("verify")
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Check every entry's hash and link and every signed checkpoint. Prints OK with
    counts, or the first entry that was altered, removed or reordered; exit code 1 then."""
    from tongban.audit import domain, service
    from tongban.db import session_factory

    with session_factory()() as session:
        report = service.verify(session)
        session.rollback()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        typer.echo(domain.describe(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint of the chain's head now (when it has new entries)."""
    from tongban.audit import service
    from tongban.config import get_settings
    from tongban.db import transaction

    node = get_settings().node_id
    try:
        with transaction() as session:
            cp = service.checkpoint(session, node)
            if cp is None:
                last = service.last_checkpoint(session)
                where = f"seq {last.seq}" if last else "nothing to sign: the chain is empty"
                typer.echo(f"no new entries since the last checkpoint ({where})")
                return
            typer.echo(f"checkpoint at seq {cp.seq} hash {cp.hash} signed by {cp.kid} ({cp.alg})")
    except service.ChainBroken as exc:
        typer.echo(f"refusing to sign: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("tail")
def tail(
    limit: Annotated[int, typer.Option(help="How many entries")] = 20,
) -> None:
    """Show the newest entries of the chain."""
    from tongban.audit import service
    from tongban.db import transaction

    with transaction() as session:
        for e in reversed(service.recent(session, limit)):
            typer.echo(f"{e.seq:>8} {e.at:%Y-%m-%d %H:%M:%S} {e.kind:18} {e.subject} {e.actor}")
