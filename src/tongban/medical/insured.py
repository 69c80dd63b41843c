"""The insured person's node: it owns their record (scheme, filings, policy, the year's
accumulators and personal account) and answers the treatment node's queries about it —
eligibility, and the reservation of the accumulators a settlement takes (reserve →
confirm, or release; expired when overdue and the hospital holds no settlement; reversed
with the claim).

A reservation moves the accumulators when it is made, under the person's row lock
(``SELECT … FOR UPDATE``; SQLite serialises writers), so while it is reserved or
confirmed nobody else can use the same deductible, cap or balance; released, expired
and reversed move them back by exactly its amounts (`domain.reverse`). Every change is
an event of the reservation's history (kernel), version-guarded and in the audit chain.
Confirm, release and reverse are idempotent: asked again, they answer the state reached.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tongban.calendar.service import local_date
from tongban.config import Settings
from tongban.db import transaction, utcnow
from tongban.errors import Conflict, NotFound, ValidationFailed
from tongban.evidence import service as evidence
from tongban.exchange import query
from tongban.exchange import service as exchange
from tongban.exchange.contracts import Refused, Sender
from tongban.kernel import events, history
from tongban.kernel.node import settings_of
from tongban.medical import domain, queries
from tongban.medical.domain import Accumulators, ReservationAction, ReservationState, Scheme
from tongban.medical.models import Accumulator, Filing, InsuredPerson, Reservation
from tongban.medical.periods import open_period_from
from tongban.medical.queries import (
    ConfirmAsk,
    EligibilityAnswer,
    EligibilityAsk,
    FileAsk,
    FilingOut,
    PersonOut,
    ReleaseAsk,
    ReserveAnswer,
    ReserveAsk,
    ReverseAsk,
    StateAnswer,
    TxnRef,
)
from tongban.medical.service import (
    accumulators,
    create_filing,
    filing_check,
    insured_by_id_number,
    policy_for,
)
from tongban.regions import service as regions

log = logging.getLogger(__name__)

#: How long a reservation waits for the hospital's confirmation before the worker asks
#: the hospital's node what became of it, by default (TONGBAN_MEDICAL_RESERVATION_TTL_SECONDS).
#: Far longer than any settlement request takes (the hospital refuses to write a
#: settlement on a reservation close to expiry: settlement.expiry_margin).
RESERVATION_TTL = timedelta(minutes=10)


def reservation_ttl(session: Session) -> timedelta:
    """This node's reservation lifetime (its settings)."""
    return timedelta(seconds=settings_of(session).medical_reservation_ttl_seconds)


# What the person's data-use log calls these disclosures.
KIND = evidence.DataUseKind(
    "medical_insurance",
    "医保参保与待遇信息",
    (
        ("name", "姓名"),
        ("insured_place", "参保地"),
        ("scheme", "险种"),
        ("filing", "异地就医备案"),
        ("policy", "待遇政策"),
        ("accumulators", "本年起付线与基金累计"),
        ("account_balance", "个人账户余额"),
    ),
)
PURPOSE = evidence.DataUsePurpose("cross_region_settlement", "异地就医直接结算")
FILING_PURPOSE = evidence.DataUsePurpose("cross_region_filing", "异地就医备案（就医机构代办）")
evidence.declare_data_use(KIND, [PURPOSE, FILING_PURPOSE])
MATTER = "异地就医门诊直接结算"


# --- who may ask ---------------------------------------------------------------------------


def _for_the_institution(
    session: Session, payload: EligibilityAsk | ReserveAsk, sender: Sender
) -> None:
    """Only the node serving the institution's jurisdiction asks for it, as that
    jurisdiction, and the institution's city lies in it."""
    inst = payload.institution
    sender.require(inst.jurisdiction, "就医机构所在辖区")
    if sender.source_jurisdiction != inst.jurisdiction:
        raise Refused("not-allowed", "查询的来源辖区须为就医机构所在辖区")
    try:
        city = regions.get_city(session, inst.city)
    except NotFound:
        city = None
    if city is None or city.jurisdiction_code != inst.jurisdiction:
        raise Refused(
            "bad-payload", f"就医机构所在城市 {inst.city} 不属于辖区 {inst.jurisdiction}", 422
        )


def _for_the_reservation(session: Session, payload: TxnRef, sender: Sender) -> None:
    """Only the node serving the jurisdiction of the institution that made a reservation
    may confirm, release or reverse it."""
    sender.require(payload.institution_jurisdiction, "就医机构所在辖区")
    found = _find(session, payload.institution_code, payload.txn_id)
    if found is not None and found.treatment_jurisdiction != payload.institution_jurisdiction:
        raise Refused("not-allowed", "该预留不属于发送节点所服务的医疗机构")


# --- the person ---------------------------------------------------------------------------


def _person(session: Session, id_number: str, *, lock: bool = False) -> InsuredPerson:
    """The person insured in a jurisdiction this node serves (anyone else is not found
    here: their record lives on their own node)."""
    person = insured_by_id_number(session, id_number)
    if not exchange.serves_here(session, person.jurisdiction_code):
        raise NotFound("未查询到该参保人的参保信息", type="not-insured")
    if lock:
        person = _lock_person(session, person.id)
    return person


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
    """The year's accumulator row, locked; created under the person's lock, so never twice."""
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


def _person_out(person: InsuredPerson) -> PersonOut:
    return PersonOut(
        name=person.name,
        jurisdiction=person.jurisdiction_code,
        city=person.city_code,
        district=person.district_code,
        scheme=Scheme(person.scheme),
    )


def _filing_out(f: Filing | None) -> FilingOut | None:
    if f is None:
        return None
    return FilingOut(
        id=f.id,
        type=domain.FilingType(f.type),
        target_city=f.target_city,
        target_jurisdiction=f.target_jurisdiction,
        valid_from=f.valid_from,
        valid_to=f.valid_to,
        channel="counter" if f.channel == "counter" else "self",
        filed_by=f.filed_by,
    )


def _log_use(
    session: Session,
    ctx: query.QueryContext,
    payload: EligibilityAsk | ReserveAsk | FileAsk,
    person: InsuredPerson,
    reference: str = "",
    *,
    purpose: evidence.DataUsePurpose = PURPOSE,
    fields: list[str] | None = None,
) -> None:
    """The disclosure, in the person's 我的数据使用记录 (this node holds it)."""
    if fields is None:
        fields = [k for k, _ in KIND.fields]
        if person.scheme != Scheme.EMPLOYEE:
            fields.remove("account_balance")
    evidence.record_data_use(
        session,
        use_id=ctx.id,
        subject_identifier=person.id_number,
        subject_name=person.name,
        user_code=payload.institution.code,
        user_name=payload.institution.name,
        user_jurisdiction=payload.institution.jurisdiction,
        operator_name=payload.operator,
        kind=KIND.code,
        purpose=purpose.code,
        holder_jurisdiction=person.jurisdiction_code,
        answered=True,
        requested_at=ctx.asked_at,
        reference=reference,
        matter_name=MATTER,
        fields=fields,
    )


# --- eligibility --------------------------------------------------------------------------


@query.query_handler(
    queries.ELIGIBILITY,
    schema=EligibilityAsk,
    answer_schema=EligibilityAnswer,
    authorise=_for_the_institution,
    subject=lambda p: p.id_number,
)
def answer_eligibility(
    session: Session, payload: EligibilityAsk, ctx: query.QueryContext
) -> EligibilityAnswer:
    """参保信息查询 answered here: scheme, the filing decision for the institution's
    place today, the policy of the person's city at its level, the year's accumulators."""
    person = _person(session, payload.id_number)
    today = local_date(utcnow())
    decision, used = filing_check(session, person, queries.place_of(payload.institution), today)
    policy = policy_for(session, person.city_code, person.scheme, payload.institution.level)
    acc = accumulators(session, person, today.year)
    _log_use(session, ctx, payload, person)
    return EligibilityAnswer(
        person=_person_out(person),
        filing_required=decision.required,
        filing_reason=decision.reason,
        filing=_filing_out(used),
        policy=queries.policy_out(policy),
        year=today.year,
        accumulators=queries.acc_out(acc),
    )


# --- filing at a treatment counter ----------------------------------------------------------


@query.query_handler(
    queries.FILE,
    schema=FileAsk,
    answer_schema=FilingOut,
    authorise=_for_the_institution,
    subject=lambda p: p.id_number,
)
def answer_file(session: Session, payload: FileAsk, ctx: query.QueryContext) -> FilingOut:
    """代办备案 made here, where the person's filings are: 临时外出就医 for the
    institution's city, from today, with the consent the counter confirmed (recorded
    with its time and who filed). A filing already covering that city today is answered
    as it is (asked twice, filed once); no filing is made where none is needed."""
    person = _person(session, payload.id_number, lock=True)
    today = local_date(utcnow())
    place = queries.place_of(payload.institution)
    decision, used = filing_check(session, person, place, today)
    if not decision.required:
        raise Conflict(decision.reason, type="filing-not-needed")
    if used is None:
        try:
            until = domain.counter_filing_until(today, payload.valid_to)
        except ValueError as e:
            raise ValidationFailed(
                str(e), errors=[{"field": "valid_to", "message": str(e)}]
            ) from None
        inst = payload.institution
        who = f"{inst.name}（{payload.operator}）" if payload.operator else inst.name
        used = create_filing(
            session,
            person,
            type=domain.FilingType.TEMPORARY.value,
            valid_from=today,
            valid_to=until,
            target_city=inst.city,
            channel="counter",
            filed_by=who[:120],
            consent_at=ctx.asked_at,
        )
        _log_use(
            session,
            ctx,
            payload,
            person,
            reference=str(used.id),
            purpose=FILING_PURPOSE,
            fields=["name", "insured_place", "filing"],
        )
    out = _filing_out(used)
    assert out is not None
    return out


# --- the reservation ----------------------------------------------------------------------


def _find(session: Session, institution_code: str, txn_id: str) -> Reservation | None:
    return session.scalar(
        select(Reservation).where(
            Reservation.institution_code == institution_code, Reservation.txn_id == txn_id
        )
    )


def split_of(r: Reservation) -> domain.Split:
    return domain.Split(
        total=r.total,
        class_a=r.class_a,
        class_b=r.class_b,
        class_c=r.class_c,
        eligible=r.eligible,
        deductible_part=r.deductible_part,
        fund=r.fund,
        account=r.account,
        cash=r.cash,
    )


def _reserve_answer(session: Session, r: Reservation) -> ReserveAnswer:
    person = r.insured
    before = Accumulators(r.before_deductible_used, r.before_fund_paid, r.before_balance)
    split = split_of(r)
    return ReserveAnswer(
        reservation_id=r.id,
        state=ReservationState(r.state),
        person=_person_out(person),
        filing_id=r.filing_id,
        policy=queries.policy_out(policy_for(session, person.city_code, person.scheme, r.level)),
        year=r.year,
        split=queries.split_out(split),
        before=queries.acc_out(before),
        after=queries.acc_out(domain.settle(before, split)),
        expires_at=r.expires_at,
    )


def _who(ctx: query.QueryContext, institution_name: str) -> history.Who:
    node = ctx.sender.node or "本节点"
    return history.Who(None, f"{institution_name}（{node}）"[:80], "institution")


@query.query_handler(
    queries.RESERVE,
    schema=ReserveAsk,
    answer_schema=ReserveAnswer,
    authorise=_for_the_institution,
    subject=lambda p: p.id_number,
)
def answer_reserve(session: Session, payload: ReserveAsk, ctx: query.QueryContext) -> ReserveAnswer:
    """Reserve what the claim takes from the accumulators: refuse without a filing the
    treatment needs, split the claim with the person's policy and accumulators under
    their lock, move the accumulators, keep the reservation. The same transaction id
    again answers the same reservation; with other content it is refused."""
    inst = payload.institution
    existing = _find(session, inst.code, payload.txn_id)
    if existing is None:
        person = _person(session, payload.id_number, lock=True)
        existing = _find(session, inst.code, payload.txn_id)  # re-read under the lock
    else:
        person = existing.insured
    if existing is not None:
        if existing.request_hash != payload.request_hash or person.id_number != payload.id_number:
            raise Conflict(
                f"交易流水号 {payload.txn_id} 已用于另一笔结算，内容不一致", type="txn-id-reused"
            )
        return _reserve_answer(session, existing)
    now = utcnow()
    today = local_date(now)
    decision, used = filing_check(session, person, queries.place_of(inst), today)
    if not decision.allowed:
        raise ValidationFailed(
            decision.reason,
            type="filing-required",
            errors=[{"field": "filing", "message": decision.reason}],
        )
    policy = policy_for(session, person.city_code, person.scheme, inst.level)
    row = _accumulator_row(session, person, today.year)
    before = Accumulators(row.deductible_used, row.fund_paid, person.account_balance)
    lines = [domain.Line(x.amount, x.item_class, x.self_pay_first_bp) for x in payload.lines]
    split = domain.split_claim(lines, policy, before, Scheme(person.scheme))
    after = domain.settle(before, split)
    row.deductible_used, row.fund_paid = after.deductible_used, after.fund_paid
    person.account_balance = after.account_balance
    r = Reservation(
        insured_id=person.id,
        institution_code=inst.code,
        institution_name=inst.name,
        treatment_jurisdiction=inst.jurisdiction,
        treatment_city=inst.city,
        level=inst.level,
        txn_id=payload.txn_id,
        request_hash=payload.request_hash,
        filing_id=used.id if used else None,
        year=today.year,
        **split.as_dict(),
        before_deductible_used=before.deductible_used,
        before_fund_paid=before.fund_paid,
        before_balance=before.account_balance,
        state=ReservationState.RESERVED.value,
        reserved_at=now,
        expires_at=now + reservation_ttl(session),
    )
    r.insured = person
    session.add(r)
    history.record(
        session,
        r,
        ReservationAction.RESERVE,
        _who(ctx, inst.name),
        None,
        ReservationState.RESERVED,
        payload=_amounts(r),
    )
    _log_use(session, ctx, payload, person, reference=payload.txn_id)
    return _reserve_answer(session, r)


def _amounts(r: Reservation) -> dict[str, object]:
    return {
        "txn_id": r.txn_id,
        "institution_code": r.institution_code,
        "deductible_part": r.deductible_part,
        "fund": r.fund,
        "account": r.account,
    }


def move(
    session: Session,
    r: Reservation,
    action: ReservationAction,
    actor: history.Who,
    reason: str = "",
    payload: Mapping[str, object] | None = None,
    *,
    only_from: ReservationState | None = None,
) -> Reservation:
    """Take `action` on reservation `r` (re-read under the person's lock): idempotent —
    asking for the state it is in already changes nothing; a release or a reversal of a
    reservation already given back changes nothing either; with `only_from`, one that
    has left that state meanwhile is left as it is. Gives the amounts back to the
    accumulators when it leaves the counting states."""
    _lock_person(session, r.insured_id)
    session.refresh(r)
    state = ReservationState(r.state)
    if only_from is not None and state is not only_from:
        return r
    wanted = domain.RESERVATION.rule(ReservationState.RESERVED, action)
    if wanted is not None and state is wanted.target:
        return r
    if state not in domain.COUNTING and action in (
        ReservationAction.RELEASE,
        ReservationAction.REVERSE,
    ):
        return r  # nothing counts any more: nothing to give back
    target = domain.RESERVATION.next_state(state, action)
    if domain.gives_back(state, target):
        person = r.insured
        row = _accumulator_row(session, person, r.year)
        now_acc = Accumulators(row.deductible_used, row.fund_paid, person.account_balance)
        back = domain.reverse(now_acc, split_of(r))
        row.deductible_used, row.fund_paid = back.deductible_used, back.fund_paid
        person.account_balance = back.account_balance
    r.state = target.value
    r.resolved_at = utcnow()
    history.record(
        session, r, action, actor, state, target, reason, payload={**_amounts(r), **(payload or {})}
    )
    return r


def _reservation(session: Session, payload: TxnRef) -> Reservation:
    r = _find(session, payload.institution_code, payload.txn_id)
    if r is None:
        raise NotFound("未找到该交易的累计额预留", type="unknown-reservation")
    return r


def _state(r: Reservation) -> StateAnswer:
    return StateAnswer(reservation_id=r.id, state=ReservationState(r.state))


def keep_periods(
    session: Session, r: Reservation, period: str | None, reversal_period: str | None = None
) -> None:
    """The clearing periods of a claim that became one (confirmed or reversed), as the
    hospital's node assigned them — the first open one here from there, as the hospital
    does — unless already known (a repeated confirmation changes nothing)."""
    if r.state not in (ReservationState.CONFIRMED, ReservationState.REVERSED):
        return
    if period is not None and r.period is None:
        r.period = open_period_from(session, period)
    if (
        reversal_period is not None
        and r.reversal_period is None
        and r.state == ReservationState.REVERSED
    ):
        r.reversal_period = open_period_from(session, reversal_period, lock=True)
    session.flush()


@query.query_handler(
    queries.CONFIRM, schema=ConfirmAsk, answer_schema=StateAnswer, authorise=_for_the_reservation
)
def answer_confirm(session: Session, payload: ConfirmAsk, ctx: query.QueryContext) -> StateAnswer:
    """The hospital's settlement committed: the reservation is confirmed, in the
    hospital's clearing period."""
    r = _reservation(session, payload)
    r = move(session, r, ReservationAction.CONFIRM, _who(ctx, r.institution_name))
    keep_periods(session, r, payload.period)
    return _state(r)


@query.query_handler(
    queries.RELEASE, schema=ReleaseAsk, answer_schema=StateAnswer, authorise=_for_the_reservation
)
def answer_release(session: Session, payload: ReleaseAsk, ctx: query.QueryContext) -> StateAnswer:
    """The hospital's settlement failed: the amounts go back."""
    r = _reservation(session, payload)
    who = _who(ctx, r.institution_name)
    return _state(move(session, r, ReservationAction.RELEASE, who, payload.reason[:500]))


@query.query_handler(
    queries.REVERSE, schema=ReverseAsk, answer_schema=StateAnswer, authorise=_for_the_reservation
)
def answer_reverse(session: Session, payload: ReverseAsk, ctx: query.QueryContext) -> StateAnswer:
    """The hospital reversed the claim (冲正): the amounts go back."""
    r = _reservation(session, payload)
    who = _who(ctx, r.institution_name)
    extra = {"reversal_txn_id": payload.reversal_txn_id}
    r = move(session, r, ReservationAction.REVERSE, who, payload.reason[:500], payload=extra)
    keep_periods(session, r, payload.period, payload.reversal_period)
    return _state(r)


# --- overdue reservations (the worker) ------------------------------------------------------


def overdue(session: Session, now: datetime | None = None, limit: int = 100) -> list[uuid.UUID]:
    """Reservations still waiting for their confirmation past their expiry, oldest first."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Reservation.id)
            .where(
                Reservation.state == ReservationState.RESERVED.value,
                Reservation.expires_at <= now,
            )
            .order_by(Reservation.expires_at)
            .limit(limit)
        )
    )


def resolve(session: Session, reservation_id: uuid.UUID) -> ReservationState | None:
    """An overdue reservation: ask the hospital's node what it holds for the transaction,
    then confirm (its settlement exists), reverse (it exists, reversed) or expire (it
    does not). Exactly once: a reservation no longer reserved is left as it is. None
    when the hospital's node gives no answer (the amounts keep counting: the safe side;
    asked again at the next run)."""
    r = session.get(Reservation, reservation_id)
    if r is None or r.state != ReservationState.RESERVED:
        return None
    try:
        answer = query.ask(
            session,
            queries.SETTLEMENT_STATUS,
            source=r.insured.jurisdiction_code,
            target=r.treatment_jurisdiction,
            payload=queries.SettlementStatusAsk(
                institution_code=r.institution_code, txn_id=r.txn_id
            ),
        )
    except query.QueryFailed as exc:
        log.warning("reservation %s: the hospital's node did not answer (%s)", r.id, exc.detail)
        return None
    action = domain.overdue_outcome(answer.status)
    reason = {
        ReservationAction.CONFIRM: "医疗机构已结算，确认预留",
        ReservationAction.REVERSE: "医疗机构已冲正，释放预留",
        ReservationAction.EXPIRE: "预留已过期且医疗机构无此结算，释放预留",
    }[action]
    target = domain.RESERVATION.next_state(ReservationState.RESERVED, action)
    moved = move(session, r, action, history.SYSTEM, reason, only_from=ReservationState.RESERVED)
    keep_periods(session, moved, answer.period, answer.reversal_period)
    return target if moved.state == target else None


def resolve_overdue(
    factory: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> int:
    """The worker job: resolve every reservation overdue at `now`, each in its own
    transaction; returns how many changed state."""
    with transaction(factory) as session:
        ids = overdue(session, now)
    done = 0
    for rid in ids:
        with transaction(factory) as session:
            if resolve(session, rid) is not None:
                done += 1
    return done


@events.subscribe(events.RecordConcerns)
def reservation_concerns(session: Session, q: events.RecordConcerns) -> events.Concerned | None:
    """Whom a step of a reservation concerns (notifications ask): the insured person's
    accounts on this node (their insured node), by ID number."""
    if q.kind != Reservation.__tablename__:
        return None
    r = session.get(Reservation, q.record_id)
    if r is None:
        return None
    return events.Concerned(
        identifiers=(r.insured.id_number,),
        label=f"您在{r.institution_name}的就医结算（交易号 {r.txn_id}）",
        link="/medical/filings",
    )
