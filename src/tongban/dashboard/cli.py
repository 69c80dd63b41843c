"""`tongban dashboard …`: fold new events into the aggregates now, or rebuild them."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from tongban.dashboard import federation, service
from tongban.dashboard.config import dashboard_settings
from tongban.kernel.node import cli_node

app = typer.Typer(help="Integration dashboard (一体化监测)", no_args_is_help=True)

Settle = Annotated[
    float | None,
    typer.Option(help="Seconds a timed row must be old to be folded in (default: settings)"),
]


def _settle(seconds: float | None) -> timedelta:
    return timedelta(seconds=dashboard_settings().settle_seconds if seconds is None else seconds)


@app.command("refresh")
def refresh(ctx: typer.Context, settle: Settle = None) -> None:
    """Fold the events recorded since the last refresh into this node's aggregates."""
    node = cli_node(ctx)
    with node.transaction() as session:
        r = service.refresh(
            session, service.owns_for(node.settings.served_jurisdictions), settle=_settle(settle)
        )
    typer.echo(f"已统计 {r.events} 条新事件（{r.cells} 个统计单元），审计链至第 {r.audit_seq} 条")


@app.command("recompute")
def recompute(ctx: typer.Context, settle: Settle = None) -> None:
    """Rebuild this node's aggregates from every recorded event."""
    node = cli_node(ctx)
    with node.transaction() as session:
        r = service.recompute(
            session, service.owns_for(node.settings.served_jurisdictions), settle=_settle(settle)
        )
    typer.echo(f"已重新统计 {r.events} 条事件（{r.cells} 个统计单元）")


@app.command("publish")
def publish(ctx: typer.Context) -> None:
    """Queue this node's aggregates for the other nodes of the federation."""
    with cli_node(ctx).transaction() as session:
        n = federation.publish_all(session)
    typer.echo(f"已排队 {n} 条发布消息")
