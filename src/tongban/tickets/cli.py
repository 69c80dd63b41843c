"""`tongban tickets`: Open311 keys, routing checks, the deadline pass, the area polygons."""

from __future__ import annotations

from typing import Annotated

import typer

from tongban.kernel.node import cli_node
from tongban.tickets import service
from tongban.tickets.geodata import main as build_shipped_geometry
from tongban.tickets.service import open311
from tongban.tickets.tasks import watch_deadlines

app = typer.Typer(help="Work orders (12345 工单) and Open311", no_args_is_help=True)


@app.command("open311-key")
def open311_key(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The client application's name")]
) -> None:
    """Issue an Open311 API key (printed once; only its hash is stored)."""
    with cli_node(ctx).transaction() as session:
        client, key = open311.create_client(session, name)
    typer.echo(f"{client.name}: {key}")


@app.command("route")
def route(
    ctx: typer.Context,
    lat: Annotated[float, typer.Argument(help="Latitude")],
    lon: Annotated[float, typer.Argument(help="Longitude")],
    category: Annotated[str, typer.Option(help="Category code")] = "road_damage",
) -> None:
    """Show where a report at (lat, lon) would be routed (nothing is written)."""
    with cli_node(ctx).transaction() as session:
        r = service.route(session, category, lat=lat, lon=lon)
        typer.echo(f"{r.city_code} {r.district_code or ''} lead={r.lead.name}")
        for a, d in r.co_handlers:
            typer.echo(f"  co-handler {a.name} ({d:.0f} m)")
        typer.echo(r.note)


@app.command("deadlines")
def deadlines(ctx: typer.Context) -> None:
    """Run the reminder/escalation pass once (the worker runs it periodically)."""
    node = cli_node(ctx)
    counts = watch_deadlines(node.session_factory, node.settings)
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@app.command("build-geometry")
def build_geometry() -> None:
    """Regenerate the shipped SYNTHETIC area polygons (data/regions.geojson)."""
    build_shipped_geometry()
