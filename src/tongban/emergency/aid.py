"""Mutual aid (互助调拨): a city's request to other jurisdictions, their commitments,
shipments out of their reserve points, and the receipt into the requesting city's
stock. Services take a session and never commit.

Every step is an event of its record's kernel history, on the node that takes it, and
reaches the other side's copy through kernel.replication (the outbox, also when one
node serves both sides): exactly once (the inbox is idempotent, a copy ignores an event
it holds), in order (a later event waits for an earlier one), surviving a restart (the
outbox is in the database). A step that follows from another side's step (a commitment
fulfilled when its last shipment is received, a request closed when every answer is
done) runs where the record it changes lives: called by the service on that node, or by
the copy's change handler when the step arrived from the other node — one function,
both ways."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.db import utcnow
from tongban.emergency import access, domain, stock
from tongban.emergency.catalogue import catalogue
from tongban.emergency.copies import COMMITMENTS, REQUESTS, SHIPMENTS
from tongban.emergency.domain import (
    AidFacts,
    CommitmentAction,
    CommitmentState,
    Duty,
    Movement,
    RequestAction,
    RequestState,
    ShipmentAction,
    ShipmentState,
    Side,
    Urgency,
)
from tongban.emergency.models import AidRequest, Commitment, ReservePoint, Shipment, StockLot
from tongban.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.kernel import history, numbering, replication
from tongban.kernel.history import SYSTEM, Who
from tongban.regions import service as regions

TITLE_MAX = 200
CONTACT_MAX = 120


def _who(actor: Account, side: Side) -> Who:
    return history.who(actor, kind=side.value)


def _day(now: datetime) -> str:
    return calendar.local_date(now).strftime("%Y%m%d")


def _lines(mapping: dict[str, int]) -> list[dict[str, Any]]:
    return [{"item": item, "quantity": quantity} for item, quantity in mapping.items()]


def _as_map(lines: Iterable[dict[str, Any]]) -> dict[str, int]:
    return {str(x["item"]): int(x["quantity"]) for x in lines}


# --- reading -------------------------------------------------------------------------------


def get_request(session: Session, request_id: uuid.UUID) -> AidRequest:
    req = session.get(AidRequest, request_id)
    if req is None:
        raise NotFound("互助请求不存在", type="unknown-request")
    return req


def get_commitment(session: Session, commitment_id: uuid.UUID) -> Commitment:
    c = session.get(Commitment, commitment_id)
    if c is None:
        raise NotFound("调拨承诺不存在", type="unknown-commitment")
    return c


def get_shipment(session: Session, shipment_id: uuid.UUID) -> Shipment:
    sh = session.get(Shipment, shipment_id)
    if sh is None:
        raise NotFound("发运单不存在", type="unknown-shipment")
    return sh


def list_requests(
    session: Session, actor: Account, *, state: str | None = None, limit: int = 200
) -> list[AidRequest]:
    """The requests this node holds (made here or asked of a jurisdiction it serves)."""
    access.require_viewer(session, actor)
    stmt = select(AidRequest).order_by(AidRequest.created_at.desc()).limit(limit)
    if state:
        stmt = stmt.where(AidRequest.state == state)
    return list(session.scalars(stmt))


def shipped_of(c: Commitment) -> dict[str, int]:
    """What a commitment's shipments carry, per item."""
    out: dict[str, int] = {}
    for sh in c.shipments:
        for b in sh.boxes:
            out[b["item"]] = out.get(b["item"], 0) + int(b["quantity"])
    return out


def received_of(req: AidRequest) -> dict[str, int]:
    """What the request's shipments delivered (counted at receipt), per item."""
    out: dict[str, int] = {}
    for c in req.commitments:
        for sh in c.shipments:
            for line in sh.receipt or ():
                out[line["item"]] = out.get(line["item"], 0) + int(line["received"])
    return out


def giver_side(session: Session, actor: Account, req: AidRequest) -> tuple[str, str | None]:
    """The asked jurisdiction, served by this node, that `actor` coordinates for (and
    their city, None for the whole jurisdiction)."""
    for jurisdiction, city in access.cities_with(session, actor, Duty.COORDINATOR):
        if jurisdiction in req.targets and exchange.serves_here(session, jurisdiction):
            return jurisdiction, city
    raise PermissionDenied("须由被请求辖区的应急物资调度员办理", type="no-duty")


def may_answer(session: Session, actor: Account, req: AidRequest) -> bool:
    try:
        giver, _ = giver_side(session, actor, req)
    except PermissionDenied:
        return False
    return req.state == RequestState.OPEN and all(
        c.giver_jurisdiction != giver for c in req.commitments
    )


def may_act_for_requester(session: Session, actor: Account, req: AidRequest) -> bool:
    return exchange.serves_here(session, req.requester_jurisdiction) and access.has_duty(
        session, actor, Duty.COORDINATOR, req.requester_jurisdiction, req.requester_city
    )


def may_dispatch(session: Session, actor: Account, c: Commitment) -> bool:
    return (
        c.state == CommitmentState.COMMITTED
        and exchange.serves_here(session, c.giver_jurisdiction)
        and any(
            j == c.giver_jurisdiction
            for j, _ in access.cities_with(session, actor, Duty.COORDINATOR)
        )
    )


# --- the request ---------------------------------------------------------------------------


def request_aid(
    session: Session,
    actor: Account,
    *,
    city_code: str,
    destination_code: str,
    urgency: str,
    title: str,
    contact: str = "",
    lines: list[tuple[str, int]],
    targets: list[str],
) -> AidRequest:
    """A city's coordinator asks one or several jurisdictions for supplies, delivered to
    a reserve point of the city. The request is shared with every asked jurisdiction."""
    city = regions.get_city(session, city_code)
    if not exchange.serves_here(session, city.jurisdiction_code):
        raise PermissionDenied(f"本节点不服务于{city.name}所在辖区", type="not-served")
    access.require(session, actor, Duty.COORDINATOR, city.jurisdiction_code, city.code)
    errors: list[FieldError] = []
    try:
        level = Urgency(urgency)
    except ValueError:
        errors.append(FieldError("urgency", "请选择紧急程度"))
        level = Urgency.ROUTINE
    point = session.scalar(select(ReservePoint).where(ReservePoint.code == destination_code))
    if point is None or point.city_code != city.code:
        errors.append(FieldError("destination_code", "请选择本市的接收储备点"))
    if not title.strip() or len(title) > TITLE_MAX:
        errors.append(FieldError("title", f"事由为 1 至 {TITLE_MAX} 个字符"))
    if len(contact) > CONTACT_MAX:
        errors.append(FieldError("contact", f"联系人不能超过 {CONTACT_MAX} 个字符"))
    asked = list(dict.fromkeys(t.strip() for t in targets if t.strip()))
    known = {j.code for j in regions.list_jurisdictions(session)}
    if not asked:
        errors.append(FieldError("targets", "请至少选择一个被请求辖区"))
    elif any(t not in known for t in asked):
        errors.append(FieldError("targets", "辖区代码不存在"))
    elif city.jurisdiction_code in asked:
        errors.append(FieldError("targets", "不能向本辖区请求互助调拨"))
    try:
        wanted = domain.check_lines(lines, set(catalogue().items))
    except ValidationFailed as e:
        errors += e.errors
        wanted = {}
    if errors:
        raise ValidationFailed("互助请求信息有误", errors=errors)
    assert point is not None
    now = utcnow()
    targets_of = domain.TIME_TARGETS[level]
    day = _day(now)
    seq = numbering.next_value(session, f"emergency.request:{city.code}", day)
    req = AidRequest(
        number=domain.request_number(city.code, day, seq),
        requester_jurisdiction=city.jurisdiction_code,
        requester_city=city.code,
        destination_code=point.code,
        destination_name=point.name,
        destination_address=point.address,
        urgency=level.value,
        title=title.strip(),
        contact=contact.strip(),
        lines=_lines(wanted),
        targets=asked,
        state=RequestState.OPEN.value,
        respond_due_at=now + targets_of.respond,
        arrive_due_at=now + targets_of.respond + targets_of.dispatch + targets_of.arrive,
        requested_by=actor.id,
        created_at=now,
        updated_at=now,
        events=[],
        commitments=[],
    )
    session.add(req)
    session.flush()
    history.record(
        session,
        req,
        RequestAction.SUBMIT.value,
        _who(actor, Side.REQUESTER),
        None,
        req.state,
        req.title,
        {"lines": req.lines, "targets": asked},
    )
    replication.share(session, REQUESTS, req, None, req.requester_jurisdiction, asked)
    return req


def request_step(
    session: Session,
    req: AidRequest,
    action: RequestAction,
    who: Who,
    side: Side,
    reason: str = "",
    payload: dict[str, Any] | None = None,
) -> None:
    in_transit = sum(
        sh.state == ShipmentState.IN_TRANSIT for c in req.commitments for sh in c.shipments
    )
    shipped = sum(len(c.shipments) for c in req.commitments)
    facts = AidFacts(reason=reason, shipped=shipped, in_transit=in_transit)
    before = req.state
    target = domain.REQUEST_MACHINE.next_state(RequestState(before), action, side, facts)
    req.state = target.value
    req.updated_at = utcnow()
    if target is not RequestState.OPEN:
        req.closed_at = req.updated_at
    ev = history.record(session, req, action.value, who, before, target.value, reason, payload)
    replication.share(session, REQUESTS, req, ev, req.requester_jurisdiction, req.targets)


def _requester_step(
    session: Session,
    actor: Account,
    request_id: uuid.UUID,
    action: RequestAction,
    reason: str,
    payload: Callable[[AidRequest], dict[str, Any]] | None = None,
) -> AidRequest:
    """`actor`, a coordinator of the requesting city, moves its request (the event's
    payload, if any, from `payload(request)`)."""
    req = get_request(session, request_id)
    if not may_act_for_requester(session, actor, req):
        raise PermissionDenied("须由请求城市的应急物资调度员办理", type="no-duty")
    who = _who(actor, Side.REQUESTER)
    more = payload(req) if payload is not None else None
    request_step(session, req, action, who, Side.REQUESTER, reason, more)
    return req


def cancel(session: Session, actor: Account, request_id: uuid.UUID, reason: str) -> AidRequest:
    """The requester withdraws a request nothing has been shipped for."""
    req = _requester_step(session, actor, request_id, RequestAction.CANCEL, reason)
    after_request_changed(session, req)
    return req


def close(session: Session, actor: Account, request_id: uuid.UUID, reason: str) -> AidRequest:
    """The requester closes a request short (what arrived is enough, or no more will)."""
    return _requester_step(
        session,
        actor,
        request_id,
        RequestAction.CLOSE,
        reason,
        lambda req: {"received": _lines(received_of(req))},
    )


# --- the answer ----------------------------------------------------------------------------


def _require_open(req: AidRequest) -> None:
    if req.state != RequestState.OPEN:
        label = domain.REQUEST_STATE_LABELS[RequestState(req.state)]
        raise Conflict(f"互助请求当前状态为“{label}”，不能答复", type="illegal-transition")


def _answer(
    session: Session,
    actor: Account,
    req: AidRequest,
    state: CommitmentState,
    lines: dict[str, int],
    note: str,
) -> Commitment:
    _require_open(req)
    giver, city = giver_side(session, actor, req)
    if any(c.giver_jurisdiction == giver for c in req.commitments):
        raise Conflict("本辖区已答复该请求", type="already-answered")
    now = utcnow()
    c = Commitment(
        request_id=req.id,
        number=f"{req.number}-{giver}",
        giver_jurisdiction=giver,
        giver_city=city,
        state=state.value,
        lines=_lines(lines),
        note=note.strip(),
        dispatch_due_at=(
            now + domain.TIME_TARGETS[Urgency(req.urgency)].dispatch
            if state is CommitmentState.COMMITTED
            else None
        ),
        committed_by=actor.id,
        created_at=now,
        updated_at=now,
        events=[],
        shipments=[],
    )
    req.commitments.append(c)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:  # another coordinator of the jurisdiction answered first
        raise Conflict("本辖区已答复该请求", type="already-answered") from e
    action = (
        CommitmentAction.COMMIT if state is CommitmentState.COMMITTED else CommitmentAction.DECLINE
    )
    history.record(
        session,
        c,
        action.value,
        _who(actor, Side.GIVER),
        None,
        state.value,
        c.note,
        {"lines": c.lines},
    )
    replication.share(session, COMMITMENTS, c, None, giver, [req.requester_jurisdiction])
    after_commitment_changed(session, c)
    return c


def commit(
    session: Session,
    actor: Account,
    request_id: uuid.UUID,
    lines: list[tuple[str, int]],
    note: str = "",
) -> Commitment:
    """An asked jurisdiction commits supplies (possibly fewer than asked), no more than
    its usable stock holds now."""
    req = get_request(session, request_id)
    _require_open(req)
    offered = domain.check_lines(lines, set(catalogue().items))
    domain.check_commitment(_as_map(req.lines), offered)
    if len(note) > domain.REASON_MAX:
        raise ValidationFailed("说明过长", errors=[FieldError("note", "不能超过 500 个字符")])
    giver, _ = giver_side(session, actor, req)
    usable: dict[str, int] = {}
    for _, _, item, _, available, _, _ in stock.aggregate(
        session, jurisdictions=[giver], item_codes=list(offered)
    ):
        usable[item] = usable.get(item, 0) + available
    short = [
        FieldError(f"lines.{n}.quantity", f"本辖区可用库存 {usable.get(item, 0)}，不足 {quantity}")
        for n, (item, quantity) in enumerate(offered.items())
        if usable.get(item, 0) < quantity
    ]
    if short:
        raise ValidationFailed("承诺数量超过本辖区可用库存", errors=short)
    return _answer(session, actor, req, CommitmentState.COMMITTED, offered, note)


def decline(session: Session, actor: Account, request_id: uuid.UUID, reason: str) -> Commitment:
    """An asked jurisdiction answers that it cannot help, and why."""
    req = get_request(session, request_id)
    _require_open(req)
    if not reason.strip():
        raise ValidationFailed("请说明无法支援的原因", errors=[FieldError("reason", "请填写理由")])
    if len(reason) > domain.REASON_MAX:
        raise ValidationFailed("原因过长", errors=[FieldError("reason", "不能超过 500 个字符")])
    return _answer(session, actor, req, CommitmentState.DECLINED, {}, reason)


def commitment_step(
    session: Session,
    c: Commitment,
    action: CommitmentAction,
    who: Who,
    side: Side,
    reason: str = "",
    payload: dict[str, Any] | None = None,
) -> None:
    facts = AidFacts(reason=reason, shipped=len(c.shipments))
    before = c.state
    target = domain.COMMITMENT_MACHINE.next_state(CommitmentState(before), action, side, facts)
    c.state = target.value
    c.updated_at = utcnow()
    ev = history.record(session, c, action.value, who, before, target.value, reason, payload)
    replication.share(
        session, COMMITMENTS, c, ev, c.giver_jurisdiction, [c.request.requester_jurisdiction]
    )


def _require_giver(session: Session, actor: Account, c: Commitment) -> None:
    if not exchange.serves_here(session, c.giver_jurisdiction) or not any(
        j == c.giver_jurisdiction for j, _ in access.cities_with(session, actor, Duty.COORDINATOR)
    ):
        raise PermissionDenied("须由承诺辖区的应急物资调度员办理", type="no-duty")


def _giver_step(
    session: Session,
    actor: Account,
    commitment_id: uuid.UUID,
    action: CommitmentAction,
    reason: str,
    payload: Callable[[Commitment], dict[str, Any]] | None = None,
) -> Commitment:
    """`actor`, a coordinator of the giving jurisdiction, moves its commitment (the
    event's payload, if any, from `payload(commitment)`); then what follows from the
    change (after_commitment_changed)."""
    c = get_commitment(session, commitment_id)
    _require_giver(session, actor, c)
    who = _who(actor, Side.GIVER)
    more = payload(c) if payload is not None else None
    commitment_step(session, c, action, who, Side.GIVER, reason, more)
    after_commitment_changed(session, c)
    return c


def withdraw(session: Session, actor: Account, commitment_id: uuid.UUID, reason: str) -> Commitment:
    """The giver withdraws a commitment nothing has been shipped of."""
    return _giver_step(session, actor, commitment_id, CommitmentAction.WITHDRAW, reason)


def finish(session: Session, actor: Account, commitment_id: uuid.UUID, reason: str) -> Commitment:
    """The giver ends dispatching short of its commitment (what left is all there is)."""
    return _giver_step(
        session,
        actor,
        commitment_id,
        CommitmentAction.FINISH,
        reason,
        lambda c: {"shipped": _lines(shipped_of(c))},
    )


# --- the shipment --------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchLine:
    item: str
    quantity: int
    per_box: int


def dispatch(
    session: Session,
    actor: Account,
    commitment_id: uuid.UUID,
    *,
    point_code: str,
    vehicle: str,
    driver: str = "",
    contact: str = "",
    lines: list[DispatchLine],
) -> Shipment:
    """The giver loads a shipment of its commitment at one of its reserve points: boxes
    packed from the point's usable batches first-expiring-first-out, each box coded, the
    stock taken out as movements of those batches, and the shipment shared with the
    requester. When every committed unit is on its way the commitment is dispatched."""
    c = get_commitment(session, commitment_id)
    req = c.request
    _require_giver(session, actor, c)
    if c.state != CommitmentState.COMMITTED or req.state != RequestState.OPEN:
        raise Conflict("该承诺已不能再发运", type="illegal-transition")
    point = stock.get_point(session, point_code)
    if point.jurisdiction_code != c.giver_jurisdiction:
        raise ValidationFailed(
            "请选择本辖区的储备点", errors=[FieldError("point_code", "不是承诺辖区的储备点")]
        )
    access.require(session, actor, Duty.COORDINATOR, point.jurisdiction_code, point.city_code)
    errors: list[FieldError] = []
    if not vehicle.strip() or len(vehicle) > 40:
        errors.append(FieldError("vehicle", "请填写车牌号（不超过 40 个字符）"))
    if len(driver) > 80:
        errors.append(FieldError("driver", "不能超过 80 个字符"))
    if len(contact) > CONTACT_MAX:
        errors.append(FieldError("contact", f"不能超过 {CONTACT_MAX} 个字符"))
    try:
        wanted = domain.check_lines(
            [(line.item, line.quantity) for line in lines], set(catalogue().items)
        )
    except ValidationFailed as e:
        errors += e.errors
        wanted = {}
    left = domain.remaining(_as_map(c.lines), shipped_of(c))
    errors += [
        FieldError(f"lines.{n}.quantity", f"超出承诺未发运数量 {left.get(item, 0)}")
        for n, (item, quantity) in enumerate(wanted.items())
        if quantity > left.get(item, 0)
    ]
    if errors:
        raise ValidationFailed("发运信息有误", errors=errors)
    today = stock.today()
    held = {
        str(lot.id): lot
        for lot in session.scalars(
            select(StockLot).where(
                StockLot.point_id == point.id,
                StockLot.item_code.in_(list(wanted)),
                StockLot.quantity > 0,
            )
        )
        if lot.expiry is None or lot.expiry >= today
    }
    boxes = domain.pack(
        [(line.item, line.quantity, line.per_box) for line in lines],
        [
            domain.LotStock(key, lot.item_code, lot.batch, lot.expiry, lot.quantity)
            for key, lot in held.items()
        ],
    )
    now = utcnow()
    day = _day(now)
    seq = numbering.next_value(session, f"emergency.shipment:{point.city_code}", day)
    number = domain.shipment_number(point.city_code, day, seq)
    coded = [
        {
            "code": domain.box_code(number, n),
            "item": b.item,
            "batch": b.batch,
            "expiry": b.expiry.isoformat() if b.expiry else None,
            "quantity": b.quantity,
        }
        for n, b in enumerate(boxes, start=1)
    ]
    sh = Shipment(
        number=number,
        request_id=req.id,
        commitment_id=c.id,
        giver_jurisdiction=c.giver_jurisdiction,
        requester_jurisdiction=req.requester_jurisdiction,
        from_point_code=point.code,
        from_point_name=point.name,
        from_city=point.city_code,
        destination_code=req.destination_code,
        vehicle=vehicle.strip(),
        driver=driver.strip(),
        contact=contact.strip(),
        boxes=coded,
        state=ShipmentState.IN_TRANSIT.value,
        dispatched_at=now,
        arrive_due_at=now + domain.TIME_TARGETS[Urgency(req.urgency)].arrive,
        created_at=now,
        updated_at=now,
        events=[],
    )
    c.shipments.append(sh)
    session.add(sh)
    session.flush()
    who = _who(actor, Side.GIVER)
    per_lot: dict[str, list[domain.Box]] = {}
    for b in boxes:
        per_lot.setdefault(b.lot, []).append(b)
    for key, taken in per_lot.items():
        codes = [x["code"] for x, b in zip(coded, boxes, strict=True) if b.lot == key]
        stock.apply(
            session,
            held[key],
            Movement.DISPATCH,
            sum(b.quantity for b in taken),
            who,
            f"互助调拨发运 {number}（{req.number}）",
            {"shipment": number, "request": req.number, "boxes": codes},
        )
    history.record(
        session,
        sh,
        ShipmentAction.DISPATCH.value,
        who,
        None,
        sh.state,
        "",
        {"lines": _lines(wanted), "boxes": len(coded)},
    )
    replication.share(
        session, SHIPMENTS, sh, None, sh.giver_jurisdiction, [sh.requester_jurisdiction]
    )
    if not domain.remaining(_as_map(c.lines), shipped_of(c)):
        commitment_step(session, c, CommitmentAction.DISPATCHED, who, Side.GIVER)
    return sh


def receive(
    session: Session,
    actor: Account,
    shipment_id: uuid.UUID,
    counts: dict[str, int],
    note: str = "",
) -> Shipment:
    """The requesting city's coordinator receives a shipment at the destination point:
    the units counted in each box (a box not counted: none arrived) go into that point's
    stock under their batch, the receipt records every difference, and the giver's copy
    learns of it. A shipment is received once: a second receipt is refused (409)."""
    sh = get_shipment(session, shipment_id)
    if not exchange.serves_here(session, sh.requester_jurisdiction):
        raise PermissionDenied("须由请求方签收", type="no-duty")
    point = stock.get_point(session, sh.destination_code)
    access.require(session, actor, Duty.COORDINATOR, point.jurisdiction_code, point.city_code)
    before = sh.state
    target = domain.SHIPMENT_MACHINE.next_state(
        ShipmentState(before), ShipmentAction.RECEIVE, Side.REQUESTER
    )
    lines = domain.receipt(
        [(b["code"], b["item"], int(b["quantity"])) for b in sh.boxes], counts, note
    )
    now = utcnow()
    sh.state = target.value
    sh.counts = {b["code"]: int(counts.get(b["code"], 0)) for b in sh.boxes}
    sh.receipt = [
        {"item": x.item, "shipped": x.shipped, "received": x.received, "difference": x.difference}
        for x in lines
    ]
    sh.receipt_note = note.strip()
    sh.received_at = now
    sh.updated_at = now
    who = _who(actor, Side.REQUESTER)
    ev = history.record(
        session,
        sh,
        ShipmentAction.RECEIVE.value,
        who,
        before,
        target.value,
        sh.receipt_note,
        {"receipt": sh.receipt},
    )
    # Into the destination's stock, batch by batch (a batch name the point holds with
    # another expiry date is kept apart under the giver's code).
    arrived: dict[tuple[str, str, str | None], int] = {}
    for b in sh.boxes:
        n = sh.counts[b["code"]]
        if n:
            key = (b["item"], b["batch"], b["expiry"])
            arrived[key] = arrived.get(key, 0) + n
    for (item_code, batch, expiry_text), n in arrived.items():
        item = catalogue().items[item_code]
        expiry = datetime.fromisoformat(expiry_text).date() if expiry_text else None
        lot = stock.find_lot(session, point, item, batch)
        if lot is not None and lot.expiry != expiry:
            batch = f"{batch}-{sh.giver_jurisdiction}"[: domain.BATCH_MAX]
            lot = stock.find_lot(session, point, item, batch)
        if lot is None:
            lot = stock.new_lot(session, point, item, batch, expiry)
        stock.apply(
            session,
            lot,
            Movement.AID_IN,
            n,
            who,
            f"互助调拨签收 {sh.number}",
            {"shipment": sh.number, "request": sh.commitment.request.number},
        )
    replication.share(
        session, SHIPMENTS, sh, ev, sh.requester_jurisdiction, [sh.giver_jurisdiction]
    )
    after_shipment_changed(session, sh)
    return sh


# --- follow-ups: one function whether the step was taken here or arrived -------------------


def after_request_changed(session: Session, req: AidRequest) -> None:
    """On the giver's node: a cancelled request withdraws the commitments of the
    jurisdictions served here that shipped nothing yet."""
    if req.state != RequestState.CANCELLED:
        return
    for c in req.commitments:
        if (
            c.state == CommitmentState.COMMITTED
            and not c.shipments
            and exchange.serves_here(session, c.giver_jurisdiction)
        ):
            commitment_step(
                session, c, CommitmentAction.WITHDRAW, SYSTEM, Side.SYSTEM, "请求方已撤销请求"
            )


def after_commitment_changed(session: Session, c: Commitment) -> None:
    """On the giver's node: a dispatched commitment whose every shipment was received is
    fulfilled. On the requester's node: an open request every asked jurisdiction has
    finished with is closed."""
    fulfilled = c.state == CommitmentState.DISPATCHED and all(
        sh.state == ShipmentState.RECEIVED for sh in c.shipments
    )
    if fulfilled and exchange.serves_here(session, c.giver_jurisdiction):
        commitment_step(session, c, CommitmentAction.FULFIL, SYSTEM, Side.SYSTEM)
    req = c.request
    if req.state != RequestState.OPEN or not exchange.serves_here(
        session, req.requester_jurisdiction
    ):
        return
    done = {
        x.giver_jurisdiction
        for x in req.commitments
        if CommitmentState(x.state) in domain.COMMITMENT_DONE
    }
    if set(req.targets) <= done:
        request_step(
            session,
            req,
            RequestAction.CLOSE,
            SYSTEM,
            Side.SYSTEM,
            "各被请求辖区均已办结",
            {"received": _lines(received_of(req))},
        )


def after_shipment_changed(session: Session, sh: Shipment) -> None:
    """A received shipment may complete its commitment (on the giver's node)."""
    if sh.state == ShipmentState.RECEIVED:
        after_commitment_changed(session, sh.commitment)


def _on_request(session: Session, req: AidRequest, *_: Any) -> None:
    after_request_changed(session, req)


def _on_commitment(session: Session, c: Commitment, *_: Any) -> None:
    after_commitment_changed(session, c)


def _on_shipment(session: Session, sh: Shipment, *_: Any) -> None:
    after_shipment_changed(session, sh)


replication.register(REQUESTS, on_change=_on_request)
replication.register(
    COMMITMENTS,
    on_snapshot=lambda session, c, created, payload, msg: _on_commitment(session, c),
    on_change=_on_commitment,
)
replication.register(SHIPMENTS, on_change=_on_shipment)


def shipment_step(
    session: Session,
    sh: Shipment,
    action: ShipmentAction,
    who: Who,
    side: Side,
    reason: str = "",
    payload: dict[str, Any] | None = None,
) -> None:
    """A step of a shipment on its way, on the requester's node (the watch's escalation)."""
    before = sh.state
    target = domain.SHIPMENT_MACHINE.next_state(ShipmentState(before), action, side)
    sh.state = target.value
    sh.updated_at = utcnow()
    ev = history.record(session, sh, action.value, who, before, target.value, reason, payload)
    replication.share(
        session, SHIPMENTS, sh, ev, sh.requester_jurisdiction, [sh.giver_jurisdiction]
    )


__all__ = [
    "DispatchLine",
    "cancel",
    "commitment_step",
    "close",
    "commit",
    "decline",
    "dispatch",
    "finish",
    "get_commitment",
    "get_request",
    "get_shipment",
    "list_requests",
    "receive",
    "request_step",
    "request_aid",
    "shipment_step",
    "withdraw",
]
