"""`tongban calendar`: operator overrides of the working-day calendar."""

from __future__ import annotations

import getpass
import os
from datetime import date
from typing import Annotated

import typer

from tongban.calendar import service as calendar
from tongban.calendar.domain import library_covers
from tongban.kernel.node import cli_node

app = typer.Typer(help="The working-day calendar")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("日期格式应为 YYYY-MM-DD") from None


def _operator(by: str | None) -> str:
    """The audit chain's actor of an operator's change: --by, else the login name."""
    return "operator:" + (by or os.environ.get("SUDO_USER") or getpass.getuser())


@app.command("override")
def calendar_override(
    ctx: typer.Context,
    day: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    holiday: Annotated[
        bool, typer.Option("--holiday/--workday", help="Declare a holiday or a working day")
    ] = True,
    note: Annotated[str, typer.Option(help="e.g. the State Council notice")] = "",
    reason: Annotated[
        str | None, typer.Option(help="Why, kept in the audit chain (default: the note)")
    ] = None,
    by: Annotated[str | None, typer.Option(help="Operator name recorded")] = None,
) -> None:
    """Declare a day a holiday or a working day (a year the calendar library does not know
    yet, or a local arrangement); deadlines computed afterwards honour it. A change is an
    entry of the audit chain (calendar.override.set) by the operator."""
    parsed = _day(day)
    with cli_node(ctx).transaction() as session:
        calendar.set_override(
            session,
            parsed,
            is_workday=not holiday,
            note=note,
            actor=_operator(by),
            reason=reason or None,
        )
    typer.echo(f"{parsed}: {'holiday' if holiday else 'working day'}")


@app.command("check")
def calendar_check(
    year: Annotated[int, typer.Argument(help="Year to check")],
) -> None:
    """Say whether the installed calendar library knows the official calendar of a year."""
    if library_covers(year):
        typer.echo(f"{year}: official calendar known")
    else:
        typer.echo(
            f"{year}: NOT known to the installed chinese-calendar; Monday-Friday fallback "
            "plus any overrides (tongban calendar override)"
        )
        raise typer.Exit(1)


@app.command("remove-override")
def calendar_remove_override(
    ctx: typer.Context,
    day: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    reason: Annotated[str, typer.Option(help="Why (required; kept in the audit chain)")],
    by: Annotated[str | None, typer.Option(help="Operator name recorded")] = None,
) -> None:
    """Remove the override of a day: the official calendar (or the Monday-Friday fallback)
    applies to it again, for deadlines computed afterwards. An entry of the audit chain
    (calendar.override.removed) by the operator, with the reason. Exit 1 when the day has
    no override."""
    parsed = _day(day)
    if not reason.strip():
        raise typer.BadParameter("请填写撤销原因", param_hint="--reason")
    with cli_node(ctx).transaction() as session:
        removed = calendar.remove_override(
            session, parsed, actor=_operator(by), reason=reason.strip()
        )
    if not removed:
        typer.echo(f"{parsed} 没有人工调整，未变更", err=True)
        raise typer.Exit(1)
    typer.echo(f"已撤销 {parsed} 的人工调整；此后计算的期限按官方日历（原因：{reason.strip()}）")
