"""`tongban audit …` commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from tongban.audit import domain, service, witness
from tongban.kernel.node import cli_node, settings_of

app = typer.Typer(help="The tamper-evident audit chain", no_args_is_help=True)


@app.command("verify")
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    witnesses: Annotated[
        bool, typer.Option("--witnesses", help="Also list which peer node cosigned what")
    ] = False,
) -> None:
    """Check every entry's hash and link, every signed checkpoint and every peer node's
    cosignature of them. Prints OK with counts, or the first entry that was altered,
    removed or reordered, or the cosigned checkpoint the chain no longer matches; exit
    code 1 then."""
    with cli_node(ctx).session_factory() as session:
        report = service.verify(session)
        cosigned = witness.cosignatures(session) if witnesses else []
        peers = witness.peers(settings_of(session))
        session.rollback()
    if as_json:
        out = report.as_dict()
        if witnesses:
            out["witnesses"] = [
                {
                    "seq": c.seq,
                    "hash": c.hash,
                    "witness": c.witness,
                    "kid": c.kid,
                    "timestamp": c.timestamp,
                }
                for c in cosigned
            ]
            out["peers"] = sorted(peers)
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        typer.echo(domain.describe(report))
        if witnesses:
            _print_witnesses(cosigned, sorted(peers))
    if not report.ok:
        raise typer.Exit(1)


def _print_witnesses(cosigned: list[Any], peers: list[str]) -> None:
    if not peers:
        typer.echo("witnesses: none — this node has no peer nodes (one node), nothing is witnessed")
    else:
        typer.echo("witnesses: " + ", ".join(peers))
    if not cosigned:
        typer.echo("no checkpoint has been cosigned by a peer node yet")
    for c in cosigned:
        when = datetime.fromtimestamp(c.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        typer.echo(f"  checkpoint {c.seq} {c.hash[:16]}… cosigned by {c.witness} at {when}")


@app.command("witness-status")
def witness_status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """As a witness: the peer nodes whose checkpoints this node cosigned (the newest per
    node) and the alarms raised for checkpoints that contradicted what was cosigned
    before (a rewritten history). Exit code 1 when there is an alarm."""
    with cli_node(ctx).session_factory() as session:
        origins, alarms = witness.status(session)
        peers = witness.peers(settings_of(session))
        session.rollback()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "peers": sorted(peers),
                    "origins": [
                        {
                            "node": o.origin_node,
                            "cosigned": o.cosigned,
                            "last_seq": o.last_seq,
                            "last_hash": o.last_hash,
                            "last_cosigned_at": o.last_cosigned_at,
                        }
                        for o in origins
                    ],
                    "alarms": [
                        {
                            "node": a.origin_node,
                            "at": a.at.isoformat(),
                            "seq": a.seq,
                            "hash": a.hash,
                            "known_seq": a.known_seq,
                            "known_hash": a.known_hash,
                            "reason": a.reason,
                            "detail": a.detail,
                        }
                        for a in alarms
                    ],
                },
                ensure_ascii=False,
            )
        )
    else:
        if not peers and not origins:
            typer.echo("no peer nodes: this node is the only one, there is nothing to witness")
        for o in origins:
            when = datetime.fromtimestamp(o.last_cosigned_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            typer.echo(
                f"{o.origin_node}: {o.cosigned} checkpoint(s) cosigned, last at seq "
                f"{o.last_seq} {o.last_hash[:16]}… ({when})"
            )
        for p in sorted(set(peers) - {o.origin_node for o in origins}):
            typer.echo(f"{p}: no checkpoint received yet")
        for a in alarms:
            typer.echo(
                f"ALARM {a.at:%Y-%m-%d %H:%M:%S} {a.origin_node} checkpoint at seq {a.seq} "
                f"{a.hash[:16]}… refused ({a.reason}): {a.detail}"
            )
        if not alarms:
            typer.echo("no alarms")
    if alarms:
        raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint(ctx: typer.Context) -> None:
    """Sign a checkpoint of the chain's head now (when it has new entries)."""
    node = cli_node(ctx)
    try:
        with node.transaction() as session:
            cp = service.checkpoint(session, node.settings.node_id)
            if cp is None:
                last = service.last_checkpoint(session)
                where = f"seq {last.seq}" if last else "nothing to sign: the chain is empty"
                typer.echo(f"no new entries since the last checkpoint ({where})")
                return
            typer.echo(f"checkpoint at seq {cp.seq} hash {cp.hash} signed by {cp.kid} ({cp.alg})")
            peers = witness.peers(settings_of(session))
            if peers:
                typer.echo("sent to witnesses: " + ", ".join(sorted(peers)))
            else:
                typer.echo("no peer nodes: nothing to witness (one node)")
    except service.ChainBroken as exc:
        typer.echo(f"refusing to sign: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("tail")
def tail(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many entries")] = 20,
) -> None:
    """Show the newest entries of the chain."""
    with cli_node(ctx).transaction() as session:
        for e in reversed(service.recent(session, limit)):
            typer.echo(f"{e.seq:>8} {e.at:%Y-%m-%d %H:%M:%S} {e.kind:18} {e.subject} {e.actor}")
