"""`tongban emergency …`: grant a duty, upload stock from a file, run the watch once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tongban.emergency import access, alerts, deadlines, stock
from tongban.emergency.domain import DUTY_LABELS, Duty
from tongban.errors import DomainError
from tongban.kernel.node import cli_node

app = typer.Typer(help="Emergency reserves and mutual aid", no_args_is_help=True)


def _fail(e: DomainError) -> typer.Exit:
    typer.echo(e.detail, err=True)
    for err in e.errors[:50]:
        typer.echo(f"  {err.field}: {err.message}", err=True)
    return typer.Exit(1)


@app.command("grant")
def grant(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="A staff account")],
    duty: Annotated[Duty, typer.Option(help="keeper (储备管理员) or coordinator (调度员)")],
    city: Annotated[str | None, typer.Option(help="The city (GB/T 2260)")] = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="The whole jurisdiction (instead of a city)")
    ] = None,
) -> None:
    """Give a staff account an emergency duty (the operator's act, from the shell)."""
    try:
        with cli_node(ctx).transaction() as session:
            account = access.account_by_username(session, username)
            access.grant(
                session, None, account, duty, city_code=city, jurisdiction_code=jurisdiction
            )
    except DomainError as e:
        raise _fail(e) from e
    typer.echo(f"已授予 {username}：{DUTY_LABELS[duty]}（{city or jurisdiction}）")


@app.command("upload")
def upload(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The keeper on whose behalf the file is applied")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX")],
    mode: Annotated[str, typer.Option(help="count (盘点) or receive (入库)")] = "count",
    reason: Annotated[str, typer.Option(help="Why (recorded with every movement)")] = "",
) -> None:
    """Apply a stock file; with any bad row nothing is written and every error is
    printed (exit 1)."""
    try:
        with cli_node(ctx).transaction() as session:
            account = access.account_by_username(session, username)
            result = stock.upload(session, account, file.read_bytes(), mode, reason)
    except DomainError as e:
        raise _fail(e) from e
    typer.echo(f"已导入 {result.rows} 行，新建批次 {result.lots_created} 个，净增 {result.delta}")


@app.command("watch")
def watch(ctx: typer.Context) -> None:
    """Run the watch once (alerts; mutual aid past its time targets)."""
    with cli_node(ctx).transaction() as session:
        counts = alerts.check_stock(session)
        counts.update({f"aid_{k}": v for k, v in deadlines.watch(session).items()})
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items()))
