"""A clearing period's claims as this node holds them, as SQL: the treatment side's (the
settlements of this node's institutions) and the insured side's (the confirmed or
reversed reservations of this node's insured). One definition serves the columnar
clearing (`clearing_service.load_aggregate`) and the statements' reconciliation
(`clearing_exchange`), so the figures a node compares are the figures it clears.

A claim counts in its period unless it was reversed in that same period; a reversal
counts (with the opposite sign) in its own period when that is a later one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Integer, Select, and_, cast, literal, not_, select
from sqlalchemy.orm import Session

from tongban.exchange import service as exchange
from tongban.kernel.node import settings_of
from tongban.medical.domain import ReservationState, SettlementState
from tongban.medical.models import Institution, InsuredPerson, Reservation, Settlement
from tongban.medical.reconcile import Holder, Line, bucket_of

#: The reservations that are claims: the hospital's settlement exists (or existed).
CLAIMED = (ReservationState.CONFIRMED.value, ReservationState.REVERSED.value)


def _geo(cols: tuple[Any, Any, Any, Any], as_int: bool) -> list[Any]:
    names = ("insured_j", "treatment_j", "insured_city", "treatment_city")
    if as_int:  # the columnar clearing casts the GB/T 2260 codes to integers in SQL
        return [cast(c, Integer).label(n) for c, n in zip(cols, names, strict=True)]
    return [c.label(n) for c, n in zip(cols, names, strict=True)]


def settlement_lines(
    period: str, *, keys: bool = False, as_int: bool = False, where: tuple[Any, ...] = ()
) -> list[Select[Any]]:
    """The treatment side: claims (+fund, sign +1) and reversals landing in `period`
    (−fund, sign −1) of this node's settlements."""
    S, inst = Settlement, Institution
    geo = _geo(
        (S.insured_jurisdiction, S.treatment_jurisdiction, S.insured_city, S.treatment_city),
        as_int,
    )
    extra = [inst.code.label("institution_code"), S.txn_id.label("txn_id")] if keys else []
    reversed_ = S.status == SettlementState.REVERSED.value
    parts = [
        (S.fund, 1, (S.period == period, not_(and_(reversed_, S.reversal_period == period)))),
        (-S.fund, -1, (S.reversal_period == period, S.period != period)),
    ]
    out = []
    for fund, sign, conds in parts:
        q = select(*geo, fund.label("fund"), literal(sign).label("sign"), *extra)
        if keys:
            q = q.select_from(S).join(inst, inst.id == S.institution_id)
        out.append(q.where(*conds, *where))
    return out


def reservation_lines(
    period: str, *, keys: bool = False, as_int: bool = False, where: tuple[Any, ...] = ()
) -> list[Select[Any]]:
    """The insured side: the same for this node's reservations that became claims (their
    periods are the ones the hospital's node assigned)."""
    R, P = Reservation, InsuredPerson
    geo = _geo(
        (P.jurisdiction_code, R.treatment_jurisdiction, P.city_code, R.treatment_city), as_int
    )
    extra = [R.institution_code.label("institution_code"), R.txn_id.label("txn_id")] if keys else []
    reversed_ = R.state == ReservationState.REVERSED.value
    parts = [
        (
            R.fund,
            1,
            (
                R.state.in_(CLAIMED),
                R.period == period,
                not_(and_(reversed_, R.reversal_period == period)),
            ),
        ),
        (-R.fund, -1, (reversed_, R.reversal_period == period, R.period != period)),
    ]
    return [
        select(*geo, fund.label("fund"), literal(sign).label("sign"), *extra)
        .select_from(R)
        .join(P, P.id == R.insured_id)
        .where(*conds, *where)
        for fund, sign, conds in parts
    ]


def clearing_queries(session: Session, period: str, *, as_int: bool = True) -> list[Select[Any]]:
    """What this node clears for `period`, in the columns of `clearing.SCHEMA` (the codes
    as stored when not `as_int`): every settlement of its institutions, and its insured's
    claims at institutions of the jurisdictions it does not serve (their settlements are
    on another node). On a node serving every jurisdiction that is the settlements alone."""
    return settlement_lines(period, as_int=as_int) + insured_side_queries(
        session, period, as_int=as_int
    )


def insured_side_queries(
    session: Session, period: str, *, as_int: bool = True
) -> list[Select[Any]]:
    """The part of `clearing_queries` that is not this node's settlements: its insured's
    claims at institutions of the jurisdictions it does not serve (none on a node
    serving every jurisdiction). The clearing tally covers the settlements only; these
    are grouped directly."""
    served = settings_of(session).served_jurisdictions
    if served.strip() == "*":
        return []
    codes = [c.strip() for c in served.split(",") if c.strip()]
    return reservation_lines(
        period, as_int=as_int, where=(Reservation.treatment_jurisdiction.not_in(codes),)
    )


def lines(
    session: Session,
    period: str,
    debtor: str,
    creditor: str,
    holder: Holder,
    buckets: frozenset[int] | None = None,
) -> Iterator[Line]:
    """The lines of one direction (the debtor's insured treated at the creditor's
    institutions) as this node holds them on the `holder` side; only those of `buckets`
    when given. The holder's jurisdiction must be one this node serves."""
    held_by = debtor if holder is Holder.INSURED else creditor
    if not exchange.serves_here(session, held_by):
        raise ValueError(f"this node does not hold the {holder} side of {debtor}->{creditor}")
    if holder is Holder.TREATMENT:
        S = Settlement
        cond = (S.insured_jurisdiction == debtor, S.treatment_jurisdiction == creditor)
        queries = settlement_lines(period, keys=True, where=cond)
    else:
        R, P = Reservation, InsuredPerson
        cond = (P.jurisdiction_code == debtor, R.treatment_jurisdiction == creditor)
        queries = reservation_lines(period, keys=True, where=cond)
    for q in queries:
        for row in session.execute(q):
            if buckets is not None and bucket_of(row.institution_code, row.txn_id) not in buckets:
                continue
            sign = int(row.sign)
            yield Line(row.institution_code, row.txn_id, sign, sign * int(row.fund))
