"""`tongban calendar`: operator overrides of the working-day calendar."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="The working-day calendar")


@app.command("override")
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


@app.command("check")
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
