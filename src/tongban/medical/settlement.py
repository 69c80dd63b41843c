"""Pre-settlement, settlement, reversal (冲正) and daily reconciliation (对账).

Concurrency: settlement and reversal lock the insured person's row (SELECT … FOR
UPDATE on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE) before reading
the accumulators, so two settlements for the same person never both use the same
remaining deductible, cap or balance."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.errors import Conflict, NotFound, ValidationFailed
from tongban.identity.models import Account
from tongban.kernel import history
from tongban.medical import domain
from tongban.medical.domain import Accumulators, SettlementAction, SettlementState, Split
from tongban.medical.models import (
    Accumulator,
    Institution,
    InsuredPerson,
    Reconciliation,
    Settlement,
    Visit,
)
from tongban.medical.periods import open_period_from
from tongban.medical.service import (
    accumulators,
    filing_check,
    get_visit,
    institution_of,
    split_for,
    visit_fingerprint,
)

_TXN = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def _txn(value: str, field: str = "txn_id") -> str:
    if not _TXN.fullmatch(value or ""):
        raise ValidationFailed(
            "交易流水号须为 1–40 位字母、数字或 _ . -",
            errors=[{"field": field, "message": "格式无效"}],
        )
    return value


def _ready(session: Session, visit: Visit, day: date) -> uuid.UUID | None:
    """Refuse a claim that cannot be settled: no items, or no required filing.
    Returns the filing used, if any."""
    if not visit.items:
        raise ValidationFailed(
            "尚未上传费用明细",
            type="no-fee-items",
            errors=[{"field": "items", "message": "请先上传"}],
        )
    decision, used = filing_check(session, visit.insured, visit.institution, day)
    if not decision.allowed:
        raise ValidationFailed(
            decision.reason,
            type="filing-required",
            errors=[{"field": "filing", "message": decision.reason}],
        )
    return used.id if used else None


@dataclass
class PreSettlement:
    """预结算: the split the claim would get now, and the accumulators it starts from."""

    visit: Visit
    split: Split
    before: Accumulators
    after: Accumulators
    policy: domain.Policy


def presettle(session: Session, actor: Account, visit_id: uuid.UUID) -> PreSettlement:
    """预结算: the split of the visit's claim against the current accumulators; changes
    nothing."""
    from tongban.medical.service import policy_for

    visit = get_visit(session, actor, visit_id)
    if visit.status != "open":
        raise Conflict("该就诊已结算", type="visit-settled")
    today = local_date(utcnow())
    _ready(session, visit, today)
    before = accumulators(session, visit.insured, today.year)
    split = split_for(session, visit, before)
    person, inst = visit.insured, visit.institution
    return PreSettlement(
        visit=visit,
        split=split,
        before=before,
        after=domain.settle(before, split),
        policy=policy_for(session, person.city_code, person.scheme, inst.level),
    )


def _by_txn(
    session: Session, inst: Institution, txn_id: str, *, lock: bool = False
) -> Settlement | None:
    q = select(Settlement).where(Settlement.institution_id == inst.id, Settlement.txn_id == txn_id)
    if lock:
        q = q.with_for_update().execution_options(populate_existing=True)
    return session.scalar(q)


def _replay(existing: Settlement, fp: str) -> Settlement:
    if existing.request_hash != fp:
        raise Conflict(
            f"交易流水号 {existing.txn_id} 已用于另一笔结算，内容不一致",
            type="txn-id-reused",
        )
    return existing


def _lock_person(session: Session, person_id: uuid.UUID) -> InsuredPerson:
    person = session.scalar(
        select(InsuredPerson)
        .where(InsuredPerson.id == person_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert person is not None
    return person


def _accumulator_row(session: Session, person: InsuredPerson, year: int) -> Accumulator:
    """The year's accumulator row; created under the person's lock, so never twice."""
    row = session.scalar(
        select(Accumulator)
        .where(Accumulator.insured_id == person.id, Accumulator.year == year)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None:
        row = Accumulator(insured_id=person.id, year=year, deductible_used=0, fund_paid=0)
        session.add(row)
        session.flush()
    return row


def settle(
    session: Session, actor: Account, visit_id: uuid.UUID, txn_id: str
) -> tuple[Settlement, bool]:
    """结算: settle the visit's claim, moving the accumulators and the account balance.
    Idempotent by the hospital's transaction id: the same id for the same claim returns
    the first settlement (created=False); the same id for other content is a conflict."""
    inst = institution_of(session, actor)
    txn_id = _txn(txn_id)
    visit = get_visit(session, actor, visit_id)
    fp = visit_fingerprint(visit)
    existing = _by_txn(session, inst, txn_id)
    if existing is not None:
        return _replay(existing, fp), False
    person = _lock_person(session, visit.insured_id)
    # Re-read under the lock: a concurrent request may have settled this visit or
    # used this transaction id meanwhile.
    session.refresh(visit)
    existing = _by_txn(session, inst, txn_id)
    if existing is not None:
        return _replay(existing, visit_fingerprint(visit)), False
    if visit.status != "open":
        raise Conflict("该就诊已结算（另一交易流水号）", type="visit-settled")
    now = utcnow()
    today = local_date(now)
    filing_id = _ready(session, visit, today)
    acc_row = _accumulator_row(session, person, today.year)
    before = Accumulators(acc_row.deductible_used, acc_row.fund_paid, person.account_balance)
    split = split_for(session, visit, before)
    after = domain.settle(before, split)
    acc_row.deductible_used, acc_row.fund_paid = after.deductible_used, after.fund_paid
    person.account_balance = after.account_balance
    s = Settlement(
        institution_id=inst.id,
        txn_id=txn_id,
        request_hash=fp,
        visit_id=visit.id,
        insured_id=person.id,
        scheme=person.scheme,
        level=inst.level,
        insured_jurisdiction=person.jurisdiction_code,
        insured_city=person.city_code,
        treatment_jurisdiction=inst.jurisdiction_code,
        treatment_city=inst.city_code,
        filing_id=filing_id,
        year=today.year,
        settled_day=today,
        period=open_period_from(session, domain.period_of(today)),
        total=split.total,
        class_a=split.class_a,
        class_b=split.class_b,
        class_c=split.class_c,
        eligible=split.eligible,
        deductible_part=split.deductible_part,
        fund=split.fund,
        account=split.account,
        cash=split.cash,
        status=SettlementState.SETTLED.value,
        settled_by=actor.id,
        settled_at=now,
    )
    session.add(s)
    visit.status = "settled"
    history.record(
        session,
        s,
        SettlementAction.SETTLE,
        actor,
        None,
        SettlementState.SETTLED,
        payload={"txn_id": txn_id, "fund": s.fund, "account": s.account, "cash": s.cash},
    )
    return s, True


def split_of(s: Settlement) -> Split:
    return Split(
        total=s.total,
        class_a=s.class_a,
        class_b=s.class_b,
        class_c=s.class_c,
        eligible=s.eligible,
        deductible_part=s.deductible_part,
        fund=s.fund,
        account=s.account,
        cash=s.cash,
    )


def get_settlement(session: Session, actor: Account, txn_id: str) -> Settlement:
    """A settlement of the actor's institution by the hospital's transaction id."""
    inst = institution_of(session, actor)
    s = _by_txn(session, inst, txn_id)
    if s is None:
        raise NotFound("结算记录不存在", type="unknown-settlement")
    return s


def get_settlement_by_id(session: Session, actor: Account, settlement_id: uuid.UUID) -> Settlement:
    inst = institution_of(session, actor)
    s = session.get(Settlement, settlement_id)
    if s is None or s.institution_id != inst.id:
        raise NotFound("结算记录不存在", type="unknown-settlement")
    return s


def reverse(
    session: Session,
    actor: Account,
    txn_id: str,
    *,
    reversal_txn_id: str | None = None,
    reason: str = "",
) -> Settlement:
    """冲正: undo a settlement exactly (accumulators and balance back by what it moved)
    and reopen the visit. Idempotent: reversing a reversed settlement again with the
    same (or no) reversal id returns it; another reversal id is a conflict. The reversal
    counts in the claim's clearing period while that is open, else in the next open one."""
    inst = institution_of(session, actor)
    if reversal_txn_id is not None:
        _txn(reversal_txn_id, "reversal_txn_id")
    first = get_settlement(session, actor, txn_id)
    person = _lock_person(session, first.insured_id)
    s = _by_txn(session, inst, txn_id, lock=True)  # re-read under the lock
    assert s is not None
    if s.status == SettlementState.REVERSED:
        if reversal_txn_id not in (None, s.reversal_txn_id):
            raise Conflict(
                f"该结算已冲正（冲正流水号 {s.reversal_txn_id}）", type="already-reversed"
            )
        return s
    before_state = SettlementState(s.status)
    target = domain.SETTLEMENT.next_state(before_state, SettlementAction.REVERSE)
    acc_row = _accumulator_row(session, person, s.year)
    before = Accumulators(acc_row.deductible_used, acc_row.fund_paid, person.account_balance)
    after = domain.reverse(before, split_of(s))
    acc_row.deductible_used, acc_row.fund_paid = after.deductible_used, after.fund_paid
    person.account_balance = after.account_balance
    s.status = target.value
    s.reversal_txn_id = reversal_txn_id or f"R{s.txn_id}"[:40]
    s.reversal_reason = reason.strip()[:200] or None
    s.reversed_by = actor.id
    s.reversed_at = utcnow()
    s.reversal_period = open_period_from(session, s.period, lock=True)
    visit = session.get(Visit, s.visit_id)
    assert visit is not None
    visit.status = "open"
    # The reversal is the settlement's next event: version-checked, in the audit chain.
    history.record(
        session,
        s,
        SettlementAction.REVERSE,
        actor,
        before_state,
        target,
        s.reversal_reason or "",
        payload={
            "txn_id": s.txn_id,
            "reversal_txn_id": s.reversal_txn_id,
            "reversal_period": s.reversal_period,
            "fund": s.fund,
            "account": s.account,
            "cash": s.cash,
        },
    )
    return s


def list_settlements(
    session: Session, actor: Account, day: date | None = None, limit: int = 200
) -> list[Settlement]:
    """The actor's institution's settlements of a local day (today by default)."""
    inst = institution_of(session, actor)
    day = day or local_date(utcnow())
    return list(
        session.scalars(
            select(Settlement)
            .where(Settlement.institution_id == inst.id, Settlement.settled_day == day)
            .order_by(Settlement.settled_at.desc())
            .limit(limit)
        )
    )


# --- reconciliation ------------------------------------------------------------------


@dataclass
class ReconciliationResult:
    record: Reconciliation
    hospital: domain.Totals
    centre: domain.Totals
    differences: list[domain.Difference]

    @property
    def balanced(self) -> bool:
        return self.record.balanced


def reconcile_day(
    session: Session,
    actor: Account,
    *,
    day: date,
    totals: domain.Totals,
    details: list[dict[str, int | str]] | None = None,
) -> ReconciliationResult:
    """日对账: compare the hospital's count and totals of a day's settlements (settled
    that local day and not reversed) with the centre's; with the hospital's details,
    list the differences settlement by settlement."""
    inst = institution_of(session, actor)
    rows = session.scalars(
        select(Settlement).where(
            Settlement.institution_id == inst.id,
            Settlement.settled_day == day,
            Settlement.status == "settled",
        )
    ).all()
    centre_totals = domain.Totals()
    centre: dict[str, dict[str, int]] = {}
    for r in rows:
        centre_totals = centre_totals.add(r.total, r.fund, r.account, r.cash)
        centre[r.txn_id] = {"total": r.total, "fund": r.fund, "account": r.account, "cash": r.cash}
    diffs: list[domain.Difference] = []
    if details is not None:
        hospital: dict[str, dict[str, int]] = {}
        for i, d in enumerate(details):
            txn = str(d.get("txn_id", ""))
            if txn in hospital:
                raise ValidationFailed(
                    "对账明细中交易流水号重复",
                    errors=[{"field": f"details.{i}.txn_id", "message": "重复"}],
                )
            hospital[txn] = {f: int(d.get(f, 0)) for f in domain.AMOUNT_FIELDS}
        diffs = domain.reconcile(centre, hospital)
    balanced = totals == centre_totals and not diffs
    rec = Reconciliation(
        institution_id=inst.id,
        day=day,
        hospital_count=totals.count,
        hospital_total=totals.total,
        hospital_fund=totals.fund,
        centre_count=centre_totals.count,
        centre_total=centre_totals.total,
        centre_fund=centre_totals.fund,
        balanced=balanced,
        differences=len(diffs),
        submitted_by=actor.id,
    )
    session.add(rec)
    session.flush()
    return ReconciliationResult(rec, totals, centre_totals, diffs)
