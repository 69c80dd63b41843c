"""The `tongban` command line."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from tongban.config import get_settings

app = typer.Typer(
    help="通办 tongban — cross-jurisdiction government services", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema")
demo_app = typer.Typer(help="The demo federation", invoke_without_command=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
calendar_app = typer.Typer(help="The working-day calendar")
app.add_typer(calendar_app, name="calendar")


def _add_context_commands() -> None:
    from tongban.audit.cli import app as audit_app
    from tongban.exchange.cli import app as exchange_app
    from tongban.keys.cli import app as keys_app
    from tongban.licences.cli import app as licence_app
    from tongban.licences.cli import trust_app
    from tongban.medical.cli import app as medical_app
    from tongban.tickets.cli import app as tickets_app

    app.add_typer(keys_app, name="keys")
    app.add_typer(exchange_app, name="exchange")
    app.add_typer(licence_app, name="licence")
    app.add_typer(trust_app, name="trust")
    app.add_typer(audit_app, name="audit")
    app.add_typer(medical_app, name="medical")
    app.add_typer(tickets_app, name="tickets")


_add_context_commands()


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
    import uvicorn

    from tongban.exchange.cli import select_node
    from tongban.web.app import create_app

    _logging()
    node_port = select_node(node, federation)
    settings = get_settings()
    port = port or node_port or 8000
    application = create_app(settings, run_worker=worker and settings.embedded_worker)
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
    from tongban.db import session_factory
    from tongban.exchange.cli import select_node
    from tongban.worker import run_forever, run_once

    _logging()
    select_node(node, federation)
    settings = get_settings()
    factory = session_factory()
    if once:
        n = run_once(factory, settings)
        typer.echo(f"delivered {n} message(s)")
        return
    with contextlib.suppress(KeyboardInterrupt):
        run_forever(factory, settings)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database to the latest schema."""
    from tongban.migrate import upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    typer.echo(f"database at {revision}")


@demo_app.callback()
def demo(ctx: typer.Context) -> None:
    """Create the demo federation: regions, catalogue and demo accounts."""
    if ctx.invoked_subcommand is not None:
        return
    from tongban.db import transaction
    from tongban.demo import load_demo

    with transaction() as session:
        added = load_demo(session)
    typer.echo(f"demo federation ready ({added} account(s) added)")


@demo_app.command("accounts")
def demo_accounts(
    as_json: Annotated[bool, typer.Option("--json", help="Print as a JSON list")] = False,
) -> None:
    """List the demo accounts and their passwords."""
    from tongban.db import transaction
    from tongban.demo import accounts_as_json

    with transaction() as session:
        rows = accounts_as_json(session)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['username']:40} {r['role']:11} {r['password']}")


@calendar_app.command("override")
def calendar_override(
    day: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    holiday: Annotated[
        bool, typer.Option("--holiday/--workday", help="Declare a holiday or a working day")
    ] = True,
    note: Annotated[str, typer.Option(help="e.g. the State Council notice")] = "",
) -> None:
    """Declare a day a holiday or a working day (a year the calendar library does not know
    yet, or a local arrangement); deadlines computed afterwards honour it."""
    from datetime import date

    from tongban.calendar import service as calendar
    from tongban.db import transaction

    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter("日期格式应为 YYYY-MM-DD") from None
    with transaction() as session:
        calendar.set_override(session, parsed, is_workday=not holiday, note=note)
    typer.echo(f"{parsed}: {'holiday' if holiday else 'working day'}")


@calendar_app.command("check")
def calendar_check(
    year: Annotated[int, typer.Argument(help="Year to check")],
) -> None:
    """Say whether the installed calendar library knows the official calendar of a year."""
    from tongban.calendar.domain import library_covers

    if library_covers(year):
        typer.echo(f"{year}: official calendar known")
    else:
        typer.echo(
            f"{year}: NOT known to the installed chinese-calendar; Monday-Friday fallback "
            "plus any overrides (tongban calendar override)"
        )
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
