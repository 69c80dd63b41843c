"""Clearing periods: load a period's claims column-wise, clear them (`clearing.py`),
store the run, its gross matrices, net positions and statements; the agencies confirm
or dispute their statements; a period closes and is immutable from then on.

Re-running an open period replaces its results deterministically (statements whose
amounts did not change keep their confirmations); a closed period is returned as it is.
A reversal after its claim's period closed carries the next open period (see
`settlement.reverse`) and is counted there with the opposite sign."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.medical import claim_lines, clearing, clearing_exchange, clearing_tally, domain
from tongban.medical.models import (
    ClearingGross,
    ClearingNet,
    ClearingRun,
    ClearingStatement,
)
from tongban.medical.periods import lock_run
from tongban.medical.reconcile import Reconciliation
from tongban.regions import service as regions
from tongban.regions.domain import AuthorityType

#: (claims read so far, all of them once known)
Progress = Callable[[int, int | None], None]


def _period(period: str) -> str:
    try:
        domain.parse_period(period)
    except ValueError as e:
        raise ValidationFailed(str(e), errors=[{"field": "period", "message": str(e)}]) from None
    return period


def load_aggregate(
    session: Session,
    period: str,
    progress: Progress | None = None,
    *,
    rescan: bool = False,
    folded: list[clearing_tally.Folded] | None = None,
) -> pl.DataFrame:
    """The period's claims aggregated per (insured city, treatment city) pair. By
    default the treatment side comes from the clearing tally, its tail folded first
    (`clearing_tally`: ≤ cities² rows read, no scan of the month's settlements), and the
    insured side's claims on other nodes' institutions (none on a node serving every
    jurisdiction) are grouped directly. With `rescan`, every query is grouped directly
    (`scan_aggregate`): the reference the tally must equal, and what closing uses. What
    the fold did is appended to `folded` when given (the benchmark)."""
    if rescan:
        return scan_aggregate(session, period, progress)
    fold = clearing_tally.fold(session)
    if folded is not None:
        folded.append(fold)
    partials = [clearing_tally.aggregate(session, period)]
    if claim_lines.insured_side_queries(session, period):
        partials.append(scan_aggregate(session, period, None, claim_lines.insured_side_queries))
    agg = clearing.combine(partials)
    if progress:
        done = int(agg["claims"].sum() or 0) + int(agg["reversals"].sum() or 0)
        progress(done, done)
    return agg


def scan_aggregate(
    session: Session,
    period: str,
    progress: Progress | None = None,
    queries: Callable[..., list[Any]] = claim_lines.clearing_queries,
) -> pl.DataFrame:
    """The period's claims aggregated per (insured city, treatment city) pair: one
    GROUP BY in the database per clearing query, so at most cities² rows per query leave
    it, never the claims themselves (fetching 10 million claim rows into the process
    took about eight times as long as the database's own GROUP BY over them; see
    docs/medical.md "Scale"). The database groups the codes as they are stored and
    counts rows (casting four codes per claim to integers and summing CASEs cost about a
    fifth more); the codes become integers here, one per pair. No COUNT beforehand for
    the progress bar: it read every claim a second time. Sums of integer fen stay exact
    integers; the partial aggregates are combined and cleared in polars
    (`clearing.combine`, `finish`)."""
    done = 0
    partials: list[pl.DataFrame] = []
    for q in queries(session, period, as_int=False):
        claims = q.subquery()
        keys = [claims.c[k] for k in clearing.KEYS]
        grouped = select(
            *keys,
            func.count().filter(claims.c.sign > 0),
            func.count().filter(claims.c.sign < 0),
            func.sum(claims.c.fund),
        ).group_by(*keys)
        rows = [
            (*(int(k) for k in r[:4]), int(r[4]), int(r[5]), int(r[6]))
            for r in session.execute(grouped)
        ]
        partials.append(pl.DataFrame(rows, schema=clearing.PAIR_SCHEMA, orient="row"))
        done += sum(r[4] + r[5] for r in rows)
        if progress:
            progress(done, None)
    if progress:
        progress(done, done)
    return clearing.combine(partials)


def fold_tally(session: Session) -> clearing_tally.Folded:
    """Fold what committed since the last fold into the clearing tally (the job)."""
    return clearing_tally.fold(session)


def rebuild_tally(session: Session) -> clearing_tally.Folded:
    """Build the clearing tally again from the settlements (`tongban medical tally
    --rebuild`)."""
    return clearing_tally.rebuild(session)


def _month_over(period: str) -> bool:
    return local_date(utcnow()) >= domain.period_bounds(period)[1]


def _cross_node_pairs(session: Session) -> set[tuple[str, str]]:
    """Every pair of a jurisdiction this node serves with one it does not, whose
    statements this node compares: they are compared with the other node even when this
    side holds no claim of them (the other side may hold some; that side's node makes
    the statement when the figures reach it)."""
    codes = [j.code for j in regions.list_jurisdictions(session)]
    here = [j for j in codes if exchange.serves_here(session, j)]
    return {
        (min(x, y), max(x, y))
        for x in here
        for y in codes
        if y != x
        and not exchange.serves_here(session, y)
        and clearing_exchange.compares(session, y)
    }


def _store(
    session: Session,
    run: ClearingRun,
    res: clearing.Result,
    extra_pairs: Iterable[tuple[str, str]] = (),
) -> None:
    session.execute(delete(ClearingGross).where(ClearingGross.run_id == run.id))
    session.execute(delete(ClearingNet).where(ClearingNet.run_id == run.id))
    for level, rows in (("jurisdiction", res.jurisdictions), ("city", res.cities)):
        session.add_all(
            ClearingGross(
                run_id=run.id,
                level=level,
                debtor=g.debtor,
                creditor=g.creditor,
                claims=g.claims,
                amount=g.amount,
            )
            for g in rows
        )
    # A jurisdiction's net position is complete on the node serving it (every claim it
    # pays or receives is a reservation or a settlement there); across the federation
    # the served nets sum to zero as they do on one node.
    session.add_all(
        ClearingNet(
            run_id=run.id,
            jurisdiction_code=n.jurisdiction,
            receivable=n.receivable,
            payable=n.payable,
            net=n.net,
        )
        for n in res.nets
        if exchange.serves_here(session, n.jurisdiction)
    )
    old = {
        (s.side_a, s.side_b): s
        for s in session.scalars(
            select(ClearingStatement).where(ClearingStatement.run_id == run.id)
        )
    }
    pairs = {(p.a, p.b): p for p in res.pairs}
    # A statement no claim counts in any more is kept while it has a difference to show
    # (carried, or still open: the other side may hold the claims); reconciling it again
    # drops it once nothing is left on either side.
    kept = {k for k, st in old.items() if clearing_exchange.kept_from_the_other_side(st)}
    for a, b in sorted((set(extra_pairs) | kept) - set(pairs)):
        pairs[(a, b)] = clearing.Pair(a, b, 0, 0, 0, 0)
    for p in pairs.values():
        st = old.pop((p.a, p.b), None)
        amounts = (p.a_owes_b, p.b_owes_a, p.claims_a_to_b, p.claims_b_to_a)
        if st is None:
            st = ClearingStatement(run_id=run.id, side_a=p.a, side_b=p.b)
            session.add(st)
        elif (st.a_owes_b, st.b_owes_a, st.claims_a_to_b, st.claims_b_to_a) != amounts:
            for side in ("a", "b"):  # the amounts changed: confirmations no longer hold
                setattr(st, f"{side}_status", "pending")
                for f in ("reason", "by", "at"):
                    setattr(st, f"{side}_{f}", None)
        st.a_owes_b, st.b_owes_a, st.claims_a_to_b, st.claims_b_to_a = amounts
    for st in old.values():
        session.delete(st)
    run.claim_count, run.reversal_count = res.claim_count, res.reversal_count
    run.total_fund, run.cross_fund = res.total_fund, res.cross_fund
    run.digest = res.digest
    run.computed_at = utcnow()
    session.flush()


def _recompute(
    session: Session, run: ClearingRun, progress: Progress | None = None, *, rescan: bool = False
) -> None:
    """Clear the run's period from this node's claims (from the tally, or with `rescan`
    grouping the claims directly), then reconcile every statement with the other side
    (here or on its node); a statement with nothing on either side is dropped."""
    res = clearing.finish(load_aggregate(session, run.period, progress, rescan=rescan))
    _store(session, run, res, _cross_node_pairs(session))
    for st in all_statements(session, run):
        clearing_exchange.reconcile_statement(session, run, st)
        if clearing_exchange.empty(st):
            session.delete(st)
    session.flush()


def clear_period(
    session: Session, period: str, progress: Progress | None = None, *, rescan: bool = False
) -> ClearingRun:
    """`tongban medical clear`: clear a period (the run row is locked while it is
    computed) and reconcile its statements with the other sides. A closed period is
    returned unchanged. The claims come from the clearing tally (its tail folded
    first); `rescan` groups them directly instead (`--rescan`)."""
    run = lock_run(session, _period(period))
    if run.status == "closed":
        return run
    _recompute(session, run, progress, rescan=rescan)
    return run


def close_period(session: Session, period: str, by: str) -> ClearingRun:
    """Close a period once its month is over: recompute it one last time, then freeze it.
    Later reversals of its claims land in the next open period."""
    run = lock_run(session, _period(period))
    if run.status == "closed":
        return run
    if not _month_over(period):
        raise Conflict("清算期间尚未结束，不能关账", type="period-not-over")
    _recompute(session, run, rescan=True)  # the last word: the claims themselves
    run.status = "closed"
    run.closed_at = utcnow()
    run.closed_by = by
    session.flush()
    return run


def previous_period(day: date) -> str:
    first = date(day.year, day.month, 1)
    return domain.period_of(date.fromordinal(first.toordinal() - 1))


def clear_previous_month(session: Session) -> ClearingRun | None:
    """The worker's job: clear the month that just ended, once (not yet computed)."""
    period = previous_period(local_date(utcnow()))
    computed = session.scalar(select(ClearingRun.computed_at).where(ClearingRun.period == period))
    if computed is not None:
        return None
    return clear_period(session, period)


def open_cleared_periods(session: Session) -> list[str]:
    """Periods cleared and not closed: cleared again by the hourly job, so that both
    sides' statements follow the claims (a late confirmation or reversal resolves a
    difference; the other side's changed figures reach this one)."""
    return list(
        session.scalars(
            select(ClearingRun.period)
            .where(ClearingRun.status == "open", ClearingRun.computed_at.is_not(None))
            .order_by(ClearingRun.period)
        )
    )


def unreconciled_periods(session: Session) -> list[str]:
    """Open, cleared periods with a statement whose two sides have not (yet) agreed."""
    return list(
        session.scalars(
            select(ClearingRun.period)
            .join(ClearingStatement, ClearingStatement.run_id == ClearingRun.id)
            .where(
                ClearingRun.status == "open",
                ClearingRun.computed_at.is_not(None),
                ClearingStatement.reconciliation != Reconciliation.AGREED.value,
            )
            .distinct()
            .order_by(ClearingRun.period)
        )
    )


# --- reading and agencies ------------------------------------------------------------


def agency_jurisdiction(session: Session, actor: Account) -> str | None:
    """The jurisdiction whose medical-insurance agency the actor works for; None for the
    federation operator (who reads everything and confirms nothing)."""
    if actor.role == Role.ADMIN:
        return None
    if actor.role == Role.OFFICER and actor.authority_id is not None:
        a = regions.get_authority(session, actor.authority_id)
        if a.type == AuthorityType.MEDICAL_INSURANCE:
            return a.jurisdiction_code
    raise PermissionDenied("只有医疗保障部门工作人员可以查看清算结果")


def get_run(session: Session, period: str) -> ClearingRun:
    run = session.scalar(select(ClearingRun).where(ClearingRun.period == _period(period)))
    if run is None or run.computed_at is None:
        raise NotFound(f"{period} 尚未清算", type="not-cleared")
    return run


def list_runs(session: Session, actor: Account) -> list[ClearingRun]:
    agency_jurisdiction(session, actor)
    return list(
        session.scalars(
            select(ClearingRun)
            .where(ClearingRun.computed_at.is_not(None))
            .order_by(ClearingRun.period.desc())
        )
    )


def gross(session: Session, run: ClearingRun, level: str = "jurisdiction") -> list[ClearingGross]:
    return list(
        session.scalars(
            select(ClearingGross)
            .where(ClearingGross.run_id == run.id, ClearingGross.level == level)
            .order_by(ClearingGross.debtor, ClearingGross.creditor)
        )
    )


def nets(session: Session, run: ClearingRun) -> list[ClearingNet]:
    return list(
        session.scalars(
            select(ClearingNet)
            .where(ClearingNet.run_id == run.id)
            .order_by(ClearingNet.jurisdiction_code)
        )
    )


def statements(session: Session, actor: Account, period: str) -> list[ClearingStatement]:
    """The period's statements the actor's agency is a side of (all for the operator)."""
    j = agency_jurisdiction(session, actor)
    run = get_run(session, period)
    q = select(ClearingStatement).where(ClearingStatement.run_id == run.id)
    if j is not None:
        q = q.where(or_(ClearingStatement.side_a == j, ClearingStatement.side_b == j))
    return list(session.scalars(q.order_by(ClearingStatement.side_a, ClearingStatement.side_b)))


def all_statements(session: Session, run: ClearingRun) -> list[ClearingStatement]:
    """Every statement of a run (the operator's view: the command line)."""
    return list(
        session.scalars(
            select(ClearingStatement)
            .where(ClearingStatement.run_id == run.id)
            .order_by(ClearingStatement.side_a, ClearingStatement.side_b)
        )
    )


def get_statement(session: Session, actor: Account, statement_id: uuid.UUID) -> ClearingStatement:
    j = agency_jurisdiction(session, actor)
    st = session.get(ClearingStatement, statement_id)
    if st is None or (j is not None and j not in (st.side_a, st.side_b)):
        raise NotFound("对账单不存在", type="unknown-statement")
    return st


def run_of(session: Session, st: ClearingStatement) -> ClearingRun:
    run = session.get(ClearingRun, st.run_id)
    assert run is not None
    return run


def _agency_side(
    session: Session, actor: Account, statement_id: uuid.UUID
) -> tuple[str, ClearingStatement, ClearingRun]:
    """The side of the statement the actor's agency answers for (this node serves it),
    the statement, and its run (locked, open)."""
    j = agency_jurisdiction(session, actor)
    if j is None:
        raise PermissionDenied("只有对账双方的医疗保障部门可以确认、提出异议或结转")
    st = get_statement(session, actor, statement_id)
    if not exchange.serves_here(session, j):
        raise PermissionDenied("本节点不服务于该医疗保障部门所在辖区")
    run = lock_run(session, run_of(session, st).period)
    if run.status == "closed":
        raise Conflict("该清算期间已关账，对账单不可再变更", type="period-closed")
    return ("a" if st.side_a == j else "b"), st, run


_NOT_AGREED = {
    Reconciliation.PENDING.value: "对账单尚未与对方核对，请先清算",
    Reconciliation.DIFFERS.value: "双方结算明细存在差异，请待差异解决或结转下期后再确认",
    Reconciliation.UNREACHABLE.value: "对方节点暂不可用，尚未完成核对，请稍后再试",
}


def _answer(
    session: Session, actor: Account, statement_id: uuid.UUID, status: str, reason: str
) -> ClearingStatement:
    side, st, run = _agency_side(session, actor, statement_id)
    if status == "confirmed" and st.reconciliation != Reconciliation.AGREED.value:
        raise Conflict(_NOT_AGREED[st.reconciliation], type="statement-not-reconciled")
    setattr(st, f"{side}_status", status)
    setattr(st, f"{side}_reason", reason or None)
    setattr(st, f"{side}_by", actor.display_name)
    setattr(st, f"{side}_at", utcnow())
    session.flush()
    # The other side's node keeps this answer (and answers with its own).
    clearing_exchange.exchange_agency(session, run, st)
    return st


def confirm_statement(
    session: Session, actor: Account, statement_id: uuid.UUID
) -> ClearingStatement:
    """An agency confirms its side of a statement. When every statement of a finished
    period is confirmed by both sides and a last recomputation changes nothing, the
    period closes."""
    st = _answer(session, actor, statement_id, "confirmed", "")
    run = run_of(session, st)
    pending = session.scalar(
        select(func.count())
        .select_from(ClearingStatement)
        .where(
            ClearingStatement.run_id == run.id,
            or_(
                ClearingStatement.a_status != "confirmed", ClearingStatement.b_status != "confirmed"
            ),
        )
    )
    if not pending and _month_over(run.period):
        digest = run.digest
        res = clearing.finish(load_aggregate(session, run.period, rescan=True))
        if res.digest == digest:
            run.status, run.closed_at, run.closed_by = "closed", utcnow(), "双方确认"
        else:
            _store(session, run, res)
        session.flush()
    return st


def dispute_statement(
    session: Session, actor: Account, statement_id: uuid.UUID, reason: str
) -> ClearingStatement:
    """An agency disputes its side of a statement; the reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(
            "提出异议须说明理由", errors=[{"field": "reason", "message": "必填"}]
        )
    return _answer(session, actor, statement_id, "disputed", reason[:1000])


def carry_statement(session: Session, actor: Account, statement_id: uuid.UUID) -> ClearingStatement:
    """结转下期: the agency of either side carries the statement's open differences into
    the next open period — on the other side's node first (503 when it does not
    answer: nothing carried), then here — and the period is cleared again, so both
    sides' statements of it agree and may be confirmed."""
    _, st, run = _agency_side(session, actor, statement_id)
    if not st.open_differences:
        raise Conflict("该对账单没有待处理的差异", type="nothing-to-carry")
    clearing_exchange.carry(session, run, st, by=actor.display_name)
    _recompute(session, run)
    session.refresh(st)
    # Compared at once with the other side, which has moved the same claims.
    clearing_exchange.exchange_agency(session, run, st)
    return st


@dataclass
class CityDetail:
    debtor: str
    creditor: str
    claims: int
    amount: int


def city_details(session: Session, st: ClearingStatement) -> list[CityDetail]:
    """The city pairs behind a statement (both directions)."""
    cities = {c.code: c.jurisdiction_code for c in regions.list_cities(session)}
    sides = {st.side_a, st.side_b}
    out = []
    for g in gross(session, run_of(session, st), "city"):
        dj, cj = cities.get(g.debtor), cities.get(g.creditor)
        if {dj, cj} == sides:
            out.append(CityDetail(g.debtor, g.creditor, g.claims, g.amount))
    return out
