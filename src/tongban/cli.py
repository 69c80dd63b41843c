"""The `tongban` command line."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from tongban.config import get_settings
from tongban.contexts import build_node, registry
from tongban.demo import accounts_as_json, load_demo
from tongban.exchange.cli import select_node, warn_key_problems
from tongban.kernel.node import LazyNode, cli_node, cli_settings
from tongban.kernel.registry import ContextImportError, Registry
from tongban.worker import run_forever, run_once

app = typer.Typer(
    help="通办 tongban — cross-jurisdiction government services", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema")
demo_app = typer.Typer(help="The demo federation", invoke_without_command=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")


def add_context_commands(target: typer.Typer, contexts: Registry) -> None:
    """Every context's command groups (`tongban keys …`, `tongban licence …`)."""
    for name, group in contexts.cli():
        target.add_typer(group, name=name)


def _every_context() -> Registry:
    """Every context is imported here, so one that fails to import stops `tongban` (serve,
    worker, …) at once, saying which context and which module."""
    try:
        return registry()
    except ContextImportError as exc:
        raise SystemExit(f"tongban: {exc}") from exc


add_context_commands(app, _every_context())


@app.callback()
def main(ctx: typer.Context) -> None:
    """通办 tongban — cross-jurisdiction government services"""
    # The composition root of every command: the node of the process's settings, built
    # when a command first asks for it (kernel.node.cli_node). A test passes its own node
    # (CliRunner().invoke(app, args, obj=node)); serve and worker build theirs after
    # --node has chosen the settings.
    if ctx.obj is None:
        ctx.obj = LazyNode(get_settings(), build_node)


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default 8000, or --node's)")
    ] = None,
    worker: Annotated[bool, typer.Option(help="Run the background worker in-process")] = True,
    node: Annotated[
        str | None, typer.Option(help="Run as this node of the federation file")
    ] = None,
    federation: Annotated[
        Path | None, typer.Option(help="Federation file (TOML); or TONGBAN_FEDERATION_FILE")
    ] = None,
) -> None:
    """Serve the web pages and the API (with the worker in-process by default)."""
    # Only serving needs the ASGI server and the app factory (~0.1 s of every other
    # command's start).
    import uvicorn

    from tongban.web.app import create_app

    _logging()
    settings, node_port = select_node(get_settings(), node, federation)
    port = port or node_port or 8000
    this_node = build_node(settings)
    warn_key_problems(this_node)
    application = create_app(this_node, run_worker=worker and settings.embedded_worker)
    uvicorn.run(application, host=host, port=port, log_level="info")


@app.command("worker")
def worker_cmd(
    once: Annotated[bool, typer.Option(help="Run one pass and exit")] = False,
    node: Annotated[
        str | None, typer.Option(help="Run as this node of the federation file")
    ] = None,
    federation: Annotated[Path | None, typer.Option(help="Federation file (TOML)")] = None,
) -> None:
    """Run background jobs: message dispatch, deadline marking."""
    _logging()
    settings, _ = select_node(get_settings(), node, federation)
    this_node = build_node(settings)
    warn_key_problems(this_node)
    if once:
        n = run_once(this_node)
        typer.echo(f"delivered {n} message(s)")
        return
    with contextlib.suppress(KeyboardInterrupt):
        run_forever(this_node)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = "head") -> None:
    """Migrate the database to the latest schema."""
    from tongban.migrate import upgrade  # Alembic: ~0.4 s that only this command needs

    upgrade(cli_settings(ctx).database_url, revision)
    typer.echo(f"database at {revision}")


@demo_app.callback()
def demo(ctx: typer.Context) -> None:
    """Create the demo federation: regions, catalogue and demo accounts."""
    if ctx.invoked_subcommand is not None:
        return
    node = cli_node(ctx)
    with node.transaction() as session:
        added = load_demo(session, node.registry)
    typer.echo(f"demo federation ready ({added} account(s) added)")


@demo_app.command("accounts")
def demo_accounts(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as a JSON list")] = False,
) -> None:
    """List the demo accounts and their passwords."""
    with cli_node(ctx).transaction() as session:
        rows = accounts_as_json(session)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['username']:40} {r['role']:11} {r['password']}")


if __name__ == "__main__":
    app()
