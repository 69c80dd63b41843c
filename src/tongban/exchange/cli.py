"""`tongban exchange …` commands: this node's key, a local federation, the outbox's
dead letters and their replay."""

from __future__ import annotations

import getpass
import json
import os
import uuid
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from tongban.config import Settings
from tongban.errors import NotFound
from tongban.exchange.federation import FederationError, load
from tongban.exchange.local import init_local
from tongban.exchange.service import (
    PING,
    dead_letters,
    federation_for,
    replay,
    send,
    status_counts,
)
from tongban.kernel.node import Node, cli_node, cli_settings
from tongban.keys import service as keys

app = typer.Typer(help="Messages between nodes: dead letters, replay", no_args_is_help=True)


def select_node(
    settings: Settings, node: str | None, federation_file: Path | None
) -> tuple[Settings, int | None]:
    """`settings` made those of node `node` of `federation_file` (either may already be
    in `settings`, from TONGBAN_NODE_ID and TONGBAN_FEDERATION_FILE): node id, federation
    file and served jurisdictions from the file. Returns them and the port of the node's
    base_url, if any."""
    if federation_file is not None:
        settings = settings.model_copy(update={"federation_file": federation_file.resolve()})
    if node is not None:
        settings = settings.model_copy(update={"node_id": node})
    if settings.federation_file is None:
        if node is not None:
            raise typer.BadParameter("--node needs --federation or TONGBAN_FEDERATION_FILE")
        return settings, None
    try:
        me = load(settings.federation_file).node(settings.node_id)
    except FederationError as exc:
        typer.echo(f"federation: {exc}", err=True)
        raise typer.Exit(2) from exc
    settings = settings.model_copy(update={"served_jurisdictions": ",".join(me.jurisdictions)})
    return settings, urlsplit(me.base_url).port


def warn_key_problems(node: Node) -> None:
    """Say on stderr why other nodes of the federation would refuse `node`'s messages
    (nothing for a node outside any federation)."""
    if node.settings.federation_file is None:
        return
    for problem in _key_problems(node):
        typer.echo(f"WARNING: {problem}", err=True)


def _key_problems(node: Node) -> list[str]:
    """Why other nodes would refuse this node's messages (its key vs the file)."""
    settings = node.settings
    me = federation_for(settings).node(settings.node_id)
    try:
        with node.transaction() as session:
            row = keys.current_row(session, "node", settings.node_id)
    except Exception as exc:  # noqa: BLE001 - e.g. database not migrated yet
        return [f"cannot read this node's key: {exc}"]
    if row is None:
        return [f"node {me.id} has no key yet: run `tongban exchange node-key --create`"]
    if me.key(row.kid) is None:
        return [
            f"this node's key {row.kid} is not in the federation file for {me.id}: "
            "other nodes will refuse its messages (`tongban exchange node-key`)"
        ]
    return []


@app.command("node-key")
def node_key_cmd(
    ctx: typer.Context,
    create: Annotated[bool, typer.Option(help="Generate the key if there is none")] = False,
    alg: Annotated[str | None, typer.Option(help="EdDSA or SM2 for a new key")] = None,
) -> None:
    """Print this node's message-signing public key (a JWK for the federation file)."""
    node = cli_node(ctx)
    node_id = node.settings.node_id
    with node.transaction() as session:
        row = keys.current_row(session, "node", node_id)
        if row is None:
            if not create:
                typer.echo(f"node {node_id} has no key: use --create", err=True)
                raise typer.Exit(1)
            row = keys.create_key(session, "node", node_id, alg)
        jwk = keys.public_key(row).jwk()
    typer.echo(json.dumps(jwk, ensure_ascii=False))


@app.command("init-local")
def init_local_cmd(
    nodes: Annotated[int, typer.Option(help="How many nodes (jurisdictions round robin)")] = 4,
    base_port: Annotated[int, typer.Option(help="Port of the first node")] = 8101,
    directory: Annotated[Path, typer.Option("--dir", help="Where to put them")] = Path("var/fed"),
    alg: Annotated[str, typer.Option(help="EdDSA or SM2")] = "EdDSA",
    demo: Annotated[bool, typer.Option(help="Load the demo accounts on every node")] = True,
) -> None:
    """Create N local nodes (databases, keys) and the federation file naming them."""
    fed, planned = init_local(directory, nodes, base_port, alg=alg, demo=demo)
    typer.echo(f"federation file: {fed}")
    for n in planned:
        typer.echo(
            f"  {n.id:12} {','.join(n.jurisdictions):28} {n.base_url}   "
            f"(cd {n.directory} && tongban serve --node {n.id})"
        )


@app.command("check")
def check_cmd(ctx: typer.Context) -> None:
    """Check the federation file and this node's place and key in it."""
    settings = cli_settings(ctx)
    try:
        fed = federation_for(settings)
        me = fed.node(settings.node_id)
    except FederationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"federation {fed.name}: {len(fed.nodes)} node(s)")
    for n in fed.nodes.values():
        mark = "*" if n.id == me.id else " "
        typer.echo(f" {mark} {n.id:14} {','.join(n.jurisdictions):28} {n.base_url}")
    problems = _key_problems(cli_node(ctx)) if settings.federation_file else []
    for p in problems:
        typer.echo(f"PROBLEM: {p}", err=True)
    if problems:
        raise typer.Exit(1)


@app.command("ping")
def ping_cmd(
    ctx: typer.Context,
    jurisdiction: Annotated[str, typer.Argument(help="Target jurisdiction code")],
    source: Annotated[
        str | None, typer.Option(help="Source jurisdiction (default: the first served)")
    ] = None,
) -> None:
    """Queue an `exchange.ping` to the node serving JURISDICTION; the worker delivers it
    (watch `tongban exchange status` or the dead letters)."""
    node = cli_node(ctx)
    served = node.settings.served_jurisdictions
    src = source or (served.split(",")[0] if served != "*" else jurisdiction)
    with node.transaction() as session:
        msg = send(session, PING, src, jurisdiction, {"note": "ping"})
    typer.echo(f"queued {msg.id}")


@app.command("status")
def status_cmd(ctx: typer.Context) -> None:
    """Outbox messages by status and the inbox size."""
    with cli_node(ctx).transaction() as session:
        counts = status_counts(session)
    typer.echo("  ".join(f"{k}={v}" for k, v in counts.items()))


@app.command("dead-letters")
def dead_letters_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as a JSON list")] = False,
) -> None:
    """Messages that gave up (attempts exhausted, or refused by the receiver)."""
    with cli_node(ctx).transaction() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": str(m.id),
                "type": m.type,
                "source": m.source_jurisdiction,
                "target": m.target_jurisdiction,
                "attempts": m.attempts,
                "last_error": m.last_error,
                "created_at": m.created_at.isoformat(),
                "dead_at": m.dead_at.isoformat() if m.dead_at else None,
                "replays": m.replays,
            }
            for m in dead_letters(session)
        ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no dead letters")
        return
    for r in rows:
        typer.echo(
            f"{r['id']}  {r['type']:24} -> {r['target']}  attempts={r['attempts']}  "
            f"created={r['created_at'][:19]}  {(r['last_error'] or '')[:120]}"
        )


@app.command("replay")
def replay_cmd(
    ctx: typer.Context,
    ids: Annotated[list[str] | None, typer.Argument(help="Message ids")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter")] = False,
    by: Annotated[str | None, typer.Option(help="Operator name recorded")] = None,
) -> None:
    """Put dead letters back in the outbox with their attempts reset."""
    if bool(ids) == all_:
        raise typer.BadParameter("give message ids or --all (not both)")
    try:
        parsed = None if all_ else [uuid.UUID(i) for i in ids or []]
    except ValueError:
        raise typer.BadParameter("not a message id") from None
    operator = by or os.environ.get("SUDO_USER") or getpass.getuser()
    try:
        with cli_node(ctx).transaction() as session:
            rows = replay(session, parsed, operator)
    except NotFound as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"replayed {len(rows)} message(s) (by {operator})")
