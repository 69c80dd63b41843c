"""Pre-settlement, settlement, reversal (冲正) and daily reconciliation (对账) on the
treatment (hospital's) node.

The insured person's record, policy and accumulators live on their insured node
(insured.py); this node asks it (queries.py). Pre-settlement asks for the policy and the
accumulators and splits the claim with the pure rule; settlement asks the insured node
to *reserve* what the claim takes (the split is computed there, under the person's
lock, and checked here against the same rule), writes the settlement, and — once the
hospital's transaction has committed — *confirms* the reservation (`sync_with_insured`,
called by the entrypoint after its commit and by the worker for anything left
pending). A failure after the reservation releases it; a reversal is written here first
and then travels the same way (`medical.reverse`). Until the insured node has
acknowledged a step the settlement says so (`insured_ack`), and the worker retries it:
exactly once, because every step is idempotent there."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from tongban.calendar.service import local_date
from tongban.config import Settings
from tongban.db import transaction, utcnow
from tongban.errors import Conflict, NotFound, ValidationFailed
from tongban.exchange import query
from tongban.exchange.contracts import Sender
from tongban.identity.models import Account
from tongban.kernel import history
from tongban.kernel.node import settings_of
from tongban.medical import domain, queries
from tongban.medical.domain import (
    Accumulators,
    ReservationAction,
    ReservationState,
    SettlementAction,
    SettlementState,
    Split,
)
from tongban.medical.models import Institution, Reconciliation, Settlement, Visit
from tongban.medical.periods import open_period_from
from tongban.medical.service import (
    eligibility,
    get_visit,
    institution_of,
    split_for,
    visit_fingerprint,
)

log = logging.getLogger(__name__)

_TXN = re.compile(r"[A-Za-z0-9_.-]{1,40}")

#: A reservation this close to its expiry is not settled on: the insured node's worker
#: may be about to ask whether the settlement exists. (A fifth of the reservation's
#: lifetime when that is shorter than ten minutes: expiry_margin.)
EXPIRY_MARGIN = timedelta(minutes=2)


def expiry_margin(session: Session) -> timedelta:
    """How close to its expiry a reservation is no longer settled on: two minutes, or a
    fifth of the reservations' lifetime (the federation's setting) when shorter."""
    ttl = timedelta(seconds=settings_of(session).medical_reservation_ttl_seconds)
    return min(EXPIRY_MARGIN, ttl / 5)


def _txn(value: str, field: str = "txn_id") -> str:
    if not _TXN.fullmatch(value or ""):
        raise ValidationFailed(
            "交易流水号须为 1–40 位字母、数字或 _ . -",
            errors=[{"field": field, "message": "格式无效"}],
        )
    return value


def _has_items(visit: Visit) -> None:
    if not visit.items:
        raise ValidationFailed(
            "尚未上传费用明细",
            type="no-fee-items",
            errors=[{"field": "items", "message": "请先上传"}],
        )


@dataclass
class PreSettlement:
    """预结算: the split the claim would get now, and the accumulators it starts from."""

    visit: Visit
    split: Split
    before: Accumulators
    after: Accumulators
    policy: domain.Policy


def presettle(session: Session, actor: Account, visit_id: uuid.UUID) -> PreSettlement:
    """预结算: the split of the visit's claim against the insured node's current policy
    and accumulators; moves nothing (the query is recorded on both nodes)."""
    visit = get_visit(session, actor, visit_id)
    if visit.status != "open":
        raise Conflict("该就诊已结算", type="visit-settled")
    _has_items(visit)
    e = eligibility(session, actor, visit.id_number, visit.insured_city)
    if not e.decision.allowed:
        raise ValidationFailed(
            e.decision.reason,
            type="filing-required",
            errors=[{"field": "filing", "message": e.decision.reason}],
        )
    split = split_for(visit, e.policy, e.accumulators)
    return PreSettlement(
        visit=visit,
        split=split,
        before=e.accumulators,
        after=domain.settle(e.accumulators, split),
        policy=e.policy,
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


def _lock_visit(session: Session, visit_id: uuid.UUID) -> Visit:
    """The visit, locked: two settlements of one visit never both reserve."""
    visit = session.scalar(
        select(Visit)
        .where(Visit.id == visit_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert visit is not None
    return visit


def _ref(inst: Institution, txn_id: str) -> queries.TxnRef:
    return queries.TxnRef(
        institution_code=inst.code, institution_jurisdiction=inst.jurisdiction_code, txn_id=txn_id
    )


def _release(session: Session, inst: Institution, visit: Visit, txn_id: str, why: str) -> None:
    """Give a reservation back because this node will not settle on it; when the insured
    node does not answer, its worker expires the reservation instead."""
    ask = queries.ReleaseAsk(**_ref(inst, txn_id).model_dump(), reason=why[:500])
    try:
        query.ask(
            session,
            queries.RELEASE,
            source=inst.jurisdiction_code,
            target=visit.insured_jurisdiction,
            payload=ask,
        )
    except query.QueryFailed as exc:
        log.warning("could not release %s/%s now (%s): it expires", inst.code, txn_id, exc.detail)


def settle(
    session: Session, actor: Account, visit_id: uuid.UUID, txn_id: str
) -> tuple[Settlement, bool]:
    """结算: reserve the claim's amounts on the insured node, then write the settlement.
    Idempotent by the hospital's transaction id: the same id for the same claim returns
    the first settlement (created=False); the same id for other content is a conflict.
    The caller commits, then calls `sync_with_insured` to confirm the reservation."""
    inst = institution_of(session, actor)
    txn_id = _txn(txn_id)
    visit = get_visit(session, actor, visit_id)
    fp = visit_fingerprint(visit)
    existing = _by_txn(session, inst, txn_id)
    if existing is not None:
        return _replay(existing, fp), False
    visit = _lock_visit(session, visit.id)
    # Re-read under the lock: a concurrent request may have settled this visit or used
    # this transaction id meanwhile.
    session.refresh(visit, ["items"])
    existing = _by_txn(session, inst, txn_id)
    if existing is not None:
        return _replay(existing, visit_fingerprint(visit)), False
    if visit.status != "open":
        raise Conflict("该就诊已结算（另一交易流水号）", type="visit-settled")
    _has_items(visit)
    fp = visit_fingerprint(visit)
    lines = [
        queries.LineIn(
            amount=i.amount,
            item_class=domain.ItemClass(i.item_class),
            self_pay_first_bp=i.self_pay_first_bp,
        )
        for i in visit.items
    ]
    ask = queries.ReserveAsk(
        txn_id=txn_id,
        request_hash=fp,
        id_number=visit.id_number,
        institution=queries.institution_ref(inst),
        operator=actor.display_name[:200],
        lines=lines,
    )
    got: queries.ReserveAnswer = queries.ask(
        session,
        queries.RESERVE,
        source=inst.jurisdiction_code,
        target=visit.insured_jurisdiction,
        payload=ask,
    )
    try:
        with session.begin_nested():
            s = _write(session, actor, inst, visit, txn_id, fp, got)
    except Exception as exc:
        _release(session, inst, visit, txn_id, f"医疗机构结算未完成：{type(exc).__name__}")
        raise
    return s, True


def _write(
    session: Session,
    actor: Account,
    inst: Institution,
    visit: Visit,
    txn_id: str,
    fp: str,
    got: queries.ReserveAnswer,
) -> Settlement:
    """The settlement on the reservation `got`, after checking it (a peer node is a
    party): still reserved, not about to expire, and the split the pure rule gives for
    these items with the policy and accumulators it started from."""
    if got.state is not ReservationState.RESERVED:
        raise Conflict(
            "该交易流水号在参保地的预留已"
            + domain.RESERVATION.state_label(got.state)
            + "，请使用新的交易流水号重新结算",
            type="reservation-not-reserved",
        )
    now = utcnow()
    if got.expires_at - now < expiry_margin(session):
        raise Conflict("参保地的预留即将过期，请重新结算", type="reservation-expiring")
    split = queries.split_in(got.split)
    expected = split_for(visit, queries.policy_in(got.policy), queries.acc_in(got.before))
    if split != expected or visit.scheme != got.person.scheme:
        raise Conflict(
            "参保地返回的结算结果与本地按同一规则核算的结果不一致，未结算", type="split-mismatch"
        )
    today = local_date(now)
    s = Settlement(
        institution_id=inst.id,
        txn_id=txn_id,
        request_hash=fp,
        visit_id=visit.id,
        id_number=visit.id_number,
        insured_name=visit.insured_name,
        scheme=visit.scheme,
        level=inst.level,
        insured_jurisdiction=got.person.jurisdiction,
        insured_city=got.person.city,
        treatment_jurisdiction=inst.jurisdiction_code,
        treatment_city=inst.city_code,
        filing_id=got.filing_id,
        reservation_id=got.reservation_id,
        insured_ack=ReservationState.RESERVED.value,
        year=got.year,
        settled_day=today,
        period=open_period_from(session, domain.period_of(today)),
        **split.as_dict(),
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
        payload={
            "txn_id": txn_id,
            "reservation_id": str(got.reservation_id),
            "fund": s.fund,
            "account": s.account,
            "cash": s.cash,
        },
    )
    return s


def sync_with_insured(session: Session, s: Settlement) -> bool:
    """Tell the insured node what it is still owed for settlement `s` — confirm a
    settled claim, reverse a reversed one — and keep its acknowledgement. Called after
    the hospital's transaction has committed (by the entrypoint, then by the worker for
    whatever is left). True when nothing is owed any more; False when the insured node
    did not answer (tried again later). A confirmation refused because the reservation
    is gone is kept as `refused` and logged: an operator reverses and settles again."""
    step = domain.pending_step(SettlementState(s.status), ReservationState(s.insured_ack))
    if step is None:
        return True
    inst = s.institution
    ref = _ref(inst, s.txn_id)
    ask: queries.TxnRef
    if step is ReservationAction.CONFIRM:
        name, ask = queries.CONFIRM, queries.ConfirmAsk(**ref.model_dump(), period=s.period)
    else:
        name = queries.REVERSE
        ask = queries.ReverseAsk(
            **ref.model_dump(),
            reversal_txn_id=s.reversal_txn_id or f"R{s.txn_id}"[:40],
            reason=s.reversal_reason or "",
            period=s.period,
            reversal_period=s.reversal_period,
        )
    try:
        got: queries.StateAnswer = query.ask(
            session,
            name,
            source=inst.jurisdiction_code,
            target=s.insured_jurisdiction,
            payload=ask,
        )
    except query.QueryUnavailable as exc:
        log.warning("settlement %s: %s not acknowledged yet (%s)", s.txn_id, name, exc.reason)
        return False
    except query.QueryRefused as exc:
        log.error("settlement %s: the insured node refused %s: %s", s.txn_id, name, exc.detail)
        s.insured_ack = "refused"
        history.flush(session)
        return True
    s.insured_ack = got.state.value
    history.flush(session)
    return domain.pending_step(SettlementState(s.status), got.state) is None


def owed(session: Session, limit: int = 100) -> list[uuid.UUID]:
    """Settlements of this node whose last step the insured node has not acknowledged."""
    counting = [ReservationState.RESERVED.value, ReservationState.CONFIRMED.value]
    return list(
        session.scalars(
            select(Settlement.id)
            .where(
                or_(
                    (Settlement.status == SettlementState.SETTLED.value)
                    & (Settlement.insured_ack == ReservationState.RESERVED.value),
                    (Settlement.status == SettlementState.REVERSED.value)
                    & Settlement.insured_ack.in_(counting),
                )
            )
            .order_by(Settlement.settled_at)
            .limit(limit)
        )
    )


def sync_one(factory: sessionmaker[Session], settlement_id: uuid.UUID) -> bool:
    """`sync_with_insured` for one settlement, in a transaction of its own; True when
    nothing is owed any more (or the settlement does not exist here)."""
    with transaction(factory) as session:
        s = session.get(Settlement, settlement_id)
        return s is None or sync_with_insured(session, s)


def sync_after_response(factory: sessionmaker[Session], settlement_id: uuid.UUID) -> None:
    """The API's confirmation (or reversal) sent to the insured node once the counter
    has its answer: the hospital's transaction has committed, the reservation holds the
    amounts until confirmed or expired, so the counter need not wait for this round trip.
    Whatever fails here (the insured node down, a concurrent worker's update of the
    same settlement) is left to the worker (`sync_owed`): every step is idempotent there."""
    try:
        sync_one(factory, settlement_id)
    except Exception:  # noqa: BLE001 - the worker sends it again; never lose the log line
        log.warning(
            "settlement %s: acknowledgement left to the worker", settlement_id, exc_info=True
        )


def sync_owed(factory: sessionmaker[Session], settings: Settings) -> int:
    """The worker job: every settlement the insured node still owes an acknowledgement
    for, each in its own transaction; returns how many are now in step."""
    with transaction(factory) as session:
        ids = owed(session)
    return sum(1 for sid in ids if sync_one(factory, sid))


def _for_the_insured(
    session: Session, payload: queries.SettlementStatusAsk, sender: Sender
) -> None:
    """Only the node of the claim's insured jurisdiction learns what became of it."""
    s = session.scalar(
        select(Settlement)
        .join(Institution, Institution.id == Settlement.institution_id)
        .where(Institution.code == payload.institution_code, Settlement.txn_id == payload.txn_id)
    )
    if s is not None:
        sender.require(s.insured_jurisdiction, "该结算的参保地")


@query.query_handler(
    queries.SETTLEMENT_STATUS,
    schema=queries.SettlementStatusAsk,
    answer_schema=queries.SettlementStatusAnswer,
    authorise=_for_the_insured,
)
def answer_settlement_status(
    session: Session, payload: queries.SettlementStatusAsk, ctx: query.QueryContext
) -> queries.SettlementStatusAnswer:
    """What this node holds for an overdue reservation's transaction: settled,
    reversed, or nothing (the settlement never committed)."""
    s = session.scalar(
        select(Settlement)
        .join(Institution, Institution.id == Settlement.institution_id)
        .where(Institution.code == payload.institution_code, Settlement.txn_id == payload.txn_id)
    )
    if s is None:
        return queries.SettlementStatusAnswer(status=None)
    return queries.SettlementStatusAnswer(
        status=SettlementState(s.status), period=s.period, reversal_period=s.reversal_period
    )


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
    """冲正: mark a settlement reversed and reopen the visit; the caller commits, then
    `sync_with_insured` gives the amounts back on the insured node (the worker retries
    until it has: meanwhile they keep counting — the safe side). Idempotent: reversing a
    reversed settlement again with the same (or no) reversal id returns it; another
    reversal id is a conflict. The reversal counts in the claim's clearing period while
    that is open, else in the next open one."""
    inst = institution_of(session, actor)
    if reversal_txn_id is not None:
        _txn(reversal_txn_id, "reversal_txn_id")
    first = get_settlement(session, actor, txn_id)
    _lock_visit(session, first.visit_id)
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
            "period": s.period,  # the claim's period as reversed (the clearing tally)
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
