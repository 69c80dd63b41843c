"""`tongban medical …` commands."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session

from tongban.errors import DomainError
from tongban.kernel.node import cli_node
from tongban.medical import clearing_service as cs
from tongban.medical import service
from tongban.medical.exports import yuan as _yuan
from tongban.medical.models import ClearingRun
from tongban.regions import service as regions

app = typer.Typer(help="Cross-region outpatient settlement and clearing", no_args_is_help=True)


@app.command("load")
def load(ctx: typer.Context) -> None:
    """Load (idempotently) the insured cities' policies and the treatment catalogues."""
    with cli_node(ctx).transaction() as session:
        p, i = service.load_reference(session)
    typer.echo(f"{p} policy row(s), {i} catalogue item(s) added")


@app.command("tally")
def tally(
    ctx: typer.Context,
    rebuild: Annotated[
        bool, typer.Option(help="Build the clearing tally again from the settlements")
    ] = False,
) -> None:
    """Fold the settlements and reversals committed since the last fold into the
    clearing tally (what the job `medical.fold_clearing_tally` does)."""
    with cli_node(ctx).transaction() as session:
        done = cs.rebuild_tally(session) if rebuild else cs.fold_tally(session)
    typer.echo(
        f"clearing tally {'rebuilt' if done.rebuilt else 'folded'} up to audit position "
        f"{done.position} ({done.entries} entries read)"
    )


@app.command("clear")
def clear(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="Clearing period, YYYY-MM")],
    cities: Annotated[
        bool,
        typer.Option(
            "--cities/--jurisdictions",
            help="Print the gross matrix between cities, or between jurisdictions (default)",
        ),
    ] = False,
    close: Annotated[bool, typer.Option(help="Close the period afterwards (immutable)")] = False,
    rescan: Annotated[
        bool,
        typer.Option(
            help="Group the period's claims directly instead of reading the clearing tally"
        ),
    ] = False,
) -> None:
    """Clear a period: for every settled, unreversed claim the insured jurisdiction owes
    the treatment jurisdiction the fund's share. Re-running an open period gives the same
    result; a closed period is left as it is."""
    console = Console()
    try:
        with (
            cli_node(ctx).transaction() as session,
            Progress(
                TextColumn("[bold]清算 {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress,
        ):
            task = progress.add_task(period, total=None)

            def advance(done: int, total: int | None) -> None:
                progress.update(task, completed=done, total=total)

            run = cs.clear_period(session, period, progress=advance, rescan=rescan)
            progress.update(task, completed=progress.tasks[0].total or 0)
            if close and run.status != "closed":
                run = cs.close_period(session, period, by="cli")
            names = _names(session)
            gross = cs.gross(session, run, "city" if cities else "jurisdiction")
            nets = cs.nets(session, run)
            table = Table(title=f"{run.period} gross (insured → treatment)")
            for col in ("debtor", "creditor", "claims", "amount (yuan)"):
                table.add_column(
                    col, justify="right" if col[0] in "ca" and col != "creditor" else "left"
                )
            for g in gross:
                table.add_row(
                    names.get(g.debtor, g.debtor),
                    names.get(g.creditor, g.creditor),
                    str(g.claims),
                    _yuan(g.amount),
                )
            net_table = Table(title="net positions (Σ = 0)")
            for col in ("jurisdiction", "receivable", "payable", "net"):
                net_table.add_column(col, justify="left" if col == "jurisdiction" else "right")
            for n in nets:
                net_table.add_row(
                    names.get(n.jurisdiction_code, n.jurisdiction_code),
                    _yuan(n.receivable),
                    _yuan(n.payable),
                    _yuan(n.net),
                )
            statements, disputes = _statements(session, run, names)
    except DomainError as e:
        typer.echo(e.detail, err=True)
        raise typer.Exit(1) from None
    console.print(table)
    console.print(net_table)
    console.print(statements)
    if disputes.row_count:
        console.print(disputes)
    console.print(
        f"{run.period}: {run.claim_count} claim(s), {run.reversal_count} reversal(s), "
        f"fund {_yuan(run.total_fund)} yuan, cross-jurisdiction {_yuan(run.cross_fund)} yuan; "
        f"{run.status}; digest {run.digest}"
    )


#: Differences printed per statement (all of them are on the pages and in the API).
SHOWN_DIFFERENCES = 50


def _statements(session: Session, run: ClearingRun, names: dict[str, str]) -> tuple[Table, Table]:
    """The statements of the run with how their two sides compare, and the claims that
    cause each dispute (open differences)."""
    table = Table(title="statements (each side on its own node)")
    for col in ("a", "b", "a owes b", "b owes a", "reconciliation", "a side", "b side", "open"):
        table.add_column(
            col, justify="right" if "owes" in col or col == "open" else "left", overflow="fold"
        )
    disputes = Table(title="disputes: claims the two sides disagree on")
    for col in ("statement", "institution", "txn id", "sign", "kind", "insured", "treatment"):
        disputes.add_column(
            col, justify="right" if col in ("insured", "treatment") else "left", overflow="fold"
        )
    for st in cs.all_statements(session, run):
        open_ = st.open_differences
        table.add_row(
            names.get(st.side_a, st.side_a),
            names.get(st.side_b, st.side_b),
            _yuan(st.a_owes_b),
            _yuan(st.b_owes_a),
            st.reconciliation,
            st.a_status,
            st.b_status,
            str(len(open_)),
        )
        for d in open_[:SHOWN_DIFFERENCES]:
            disputes.add_row(
                f"{st.side_a}-{st.side_b}",
                d.institution_code,
                d.txn_id,
                f"{d.sign:+d}",
                d.kind,
                "" if d.insured_fund is None else _yuan(d.insured_fund),
                "" if d.treatment_fund is None else _yuan(d.treatment_fund),
            )
        if len(open_) > SHOWN_DIFFERENCES:
            disputes.add_row(f"{st.side_a}-{st.side_b}", f"… {len(open_) - SHOWN_DIFFERENCES} more")
    return table, disputes


@app.command("close")
def close_cmd(
    ctx: typer.Context, period: Annotated[str, typer.Option(help="Clearing period, YYYY-MM")]
) -> None:
    """Close a finished period: recompute it once more and freeze it."""
    try:
        with cli_node(ctx).transaction() as session:
            run = cs.close_period(session, period, by="cli")
    except DomainError as e:
        typer.echo(e.detail, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{run.period} closed; digest {run.digest}")


def _names(session: Session) -> dict[str, str]:
    names = {c.code: c.name for c in regions.list_cities(session)}
    names.update({j.code: j.name for j in regions.list_jurisdictions(session)})
    return names
