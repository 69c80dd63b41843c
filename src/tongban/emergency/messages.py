"""What mutual-aid messages from another node must look like before anything is written,
and the checks of the sender's right beyond the kernel's (which checks that the sending
node serves the jurisdiction that may share or change the record).

Every payload names its request (`request_id`): the copies declare it as their lane
(copies.py, `lane=`), so the exchange delivers the messages of one request to one node
one after another."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy.orm import Session

from tongban.emergency import domain
from tongban.emergency.catalogue import catalogue
from tongban.emergency.domain import (
    MAX_BOXES,
    MAX_LINES,
    MAX_QUANTITY,
    CommitmentState,
    RequestState,
    ShipmentState,
    Urgency,
)
from tongban.emergency.models import AidRequest, Commitment, Shipment
from tongban.emergency.sharing import ItemCode
from tongban.exchange import schema as s
from tongban.exchange import service as exchange
from tongban.kernel import replication
from tongban.kernel.lifecycle import StateMachine
from tongban.regions.models import City

RequestNumber = Annotated[str, StringConstraints(pattern=r"^HZ[0-9]{18}$")]
ShipmentNumber = Annotated[str, StringConstraints(pattern=r"^FY[0-9]{18}$")]
CommitmentNumber = Annotated[str, StringConstraints(pattern=r"^HZ[0-9]{18}-[0-9]{6}$")]
BoxCode = Annotated[str, StringConstraints(pattern=r"^FY[0-9]{18}-[0-9]{3,4}$")]
PointCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}-[A-Za-z0-9-]{1,33}$")]
Text120 = Annotated[str, StringConstraints(max_length=120)]
Text200 = Annotated[str, StringConstraints(max_length=200)]
Units = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
Count = Annotated[int, Field(ge=0, le=MAX_QUANTITY)]
Level = Annotated[int, Field(ge=0, le=2)]


class Line(s.Payload):
    item: ItemCode
    quantity: Units


class RequestShared(s.Payload):
    request_id: s.Uuid
    number: RequestNumber
    requester_jurisdiction: s.RegionCode
    requester_city: s.RegionCode
    destination_code: PointCode
    destination_name: Text120
    destination_address: Text200
    urgency: Urgency
    title: Text200
    contact: Text120
    lines: Annotated[list[Line], Field(min_length=1, max_length=MAX_LINES)]
    targets: Annotated[list[s.RegionCode], Field(min_length=1, max_length=40)]
    state: RequestState
    respond_due_at: s.Instant
    arrive_due_at: s.Instant
    escalation_level: Level
    created_at: s.Instant
    closed_at: s.Instant | None
    events: Annotated[list[replication.EventIn], Field(min_length=1, max_length=1000)]


class RequestChanged(s.Payload):
    request_id: s.Uuid
    number: RequestNumber
    seq: s.Seq
    event: replication.EventIn
    state: RequestState
    escalation_level: Level
    closed_at: s.Instant | None
    updated_at: s.Instant


class CommitmentShared(s.Payload):
    commitment_id: s.Uuid
    request_id: s.Uuid
    number: CommitmentNumber
    giver_jurisdiction: s.RegionCode
    giver_city: s.RegionCode | None
    state: CommitmentState
    lines: Annotated[list[Line], Field(max_length=MAX_LINES)]
    note: s.ShortText
    dispatch_due_at: s.Instant | None
    escalation_level: Level
    created_at: s.Instant
    events: Annotated[list[replication.EventIn], Field(min_length=1, max_length=1000)]


class CommitmentChanged(s.Payload):
    commitment_id: s.Uuid
    request_id: s.Uuid
    number: CommitmentNumber
    seq: s.Seq
    event: replication.EventIn
    state: CommitmentState
    note: s.ShortText
    escalation_level: Level
    updated_at: s.Instant


class BoxIn(s.Payload):
    code: BoxCode
    item: ItemCode
    batch: Annotated[str, StringConstraints(max_length=domain.BATCH_MAX)]
    expiry: s.Day | None
    quantity: Units


class ReceiptLineIn(s.Payload):
    item: ItemCode
    shipped: Count
    received: Count
    difference: Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]


class ShipmentShared(s.Payload):
    shipment_id: s.Uuid
    request_id: s.Uuid
    commitment_id: s.Uuid
    number: ShipmentNumber
    giver_jurisdiction: s.RegionCode
    requester_jurisdiction: s.RegionCode
    from_point_code: PointCode
    from_point_name: Text120
    from_city: s.RegionCode
    destination_code: PointCode
    vehicle: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    driver: Annotated[str, StringConstraints(max_length=80)]
    contact: Text120
    boxes: Annotated[list[BoxIn], Field(min_length=1, max_length=MAX_BOXES)]
    state: ShipmentState
    dispatched_at: s.Instant
    arrive_due_at: s.Instant
    received_at: s.Instant | None
    counts: Annotated[dict[BoxCode, Count], Field(max_length=MAX_BOXES)] | None
    receipt: Annotated[list[ReceiptLineIn], Field(max_length=MAX_LINES)] | None
    receipt_note: s.ShortText
    escalation_level: Level
    created_at: s.Instant
    events: Annotated[list[replication.EventIn], Field(min_length=1, max_length=1000)]


class ShipmentChanged(s.Payload):
    shipment_id: s.Uuid
    request_id: s.Uuid
    number: ShipmentNumber
    seq: s.Seq
    event: replication.EventIn
    state: ShipmentState
    received_at: s.Instant | None
    counts: Annotated[dict[BoxCode, Count], Field(max_length=MAX_BOXES)] | None
    receipt: Annotated[list[ReceiptLineIn], Field(max_length=MAX_LINES)] | None
    receipt_note: s.ShortText
    escalation_level: Level
    updated_at: s.Instant


# --- the sender's right and the payload's sense --------------------------------------------


def _bad(detail: str) -> exchange.Refused:
    return exchange.Refused("bad-payload", detail, 422)


def check_step(machine: StateMachine[Any, Any], first: str, event: Any) -> None:
    """An event names an action of its record's machine, from a state to the state the
    machine says (the first event: the creating action, from no state)."""
    try:
        action = machine.actions(event.action)
        to = machine.states(event.to_state)
        start = None if event.from_state is None else machine.states(event.from_state)
    except ValueError as e:
        raise _bad(f"未知的动作或状态：{event.action} {event.from_state}→{event.to_state}") from e
    if start is None:
        if str(action.value) not in first.split("|"):
            raise _bad(f"{machine.noun}的首个记录不能是 {event.action}")
        return
    rule = machine.rule(start, action)
    if rule is None or rule.target != to:
        raise _bad(f"{machine.noun}不能从 {start.value} 经 {action.value} 到 {to.value}")


def _check_lines(lines: list[Line]) -> None:
    known = catalogue().items
    unknown = sorted({line.item for line in lines} - set(known))
    if unknown:
        raise _bad(f"物资目录中没有 {'、'.join(unknown[:5])}")
    if len({line.item for line in lines}) != len(lines):
        raise _bad("同一物资重复")


def check_request_shared(session: Session, p: RequestShared, sender: exchange.Sender) -> None:
    if sender.target_jurisdiction not in p.targets:
        raise exchange.Refused("not-allowed", f"{sender.target_jurisdiction} 不是该请求的被请求方")
    if p.requester_jurisdiction in p.targets:
        raise _bad("请求方不能向本辖区请求")
    city = session.get(City, p.requester_city)
    if city is None or city.jurisdiction_code != p.requester_jurisdiction:
        raise _bad(f"城市 {p.requester_city} 不属于 {p.requester_jurisdiction}")
    if not p.destination_code.startswith(f"{p.requester_city}-"):
        raise _bad("接收储备点须属于请求城市")
    _check_lines(p.lines)
    for ev in p.events:
        check_step(domain.REQUEST_MACHINE, domain.RequestAction.SUBMIT.value, ev)


def check_request_changed(
    session: Session, p: RequestChanged, sender: exchange.Sender, rec: AidRequest
) -> None:
    check_step(domain.REQUEST_MACHINE, domain.RequestAction.SUBMIT.value, p.event)


def request_of(session: Session, request_id: Any) -> AidRequest:
    """The request a commitment or shipment belongs to; OutOfOrder while its copy has not
    arrived here (the messages of one request travel in order, but a retry may not)."""
    req = session.get(AidRequest, request_id)
    if req is None:
        raise exchange.OutOfOrder(f"互助请求 {request_id} 尚未共享至本节点，稍后重试")
    return req


_ANSWERS = f"{domain.CommitmentAction.COMMIT.value}|{domain.CommitmentAction.DECLINE.value}"


def check_commitment_shared(session: Session, p: CommitmentShared, sender: exchange.Sender) -> None:
    req = request_of(session, p.request_id)
    if p.giver_jurisdiction not in req.targets:
        raise exchange.Refused("not-allowed", f"{p.giver_jurisdiction} 未被请求支援 {req.number}")
    if sender.target_jurisdiction != req.requester_jurisdiction:
        raise exchange.Refused("not-allowed", "承诺只发给请求方")
    if p.number != f"{req.number}-{p.giver_jurisdiction}":
        raise _bad("承诺编号与请求不符")
    _check_lines(p.lines)
    asked = {line["item"]: int(line["quantity"]) for line in req.lines}
    if any(line.item not in asked or line.quantity > asked[line.item] for line in p.lines):
        raise _bad("承诺超出请求")
    for ev in p.events:
        check_step(domain.COMMITMENT_MACHINE, _ANSWERS, ev)


def check_commitment_changed(
    session: Session, p: CommitmentChanged, sender: exchange.Sender, rec: Commitment
) -> None:
    if p.request_id != rec.request_id:
        raise _bad("承诺与请求不符")
    check_step(domain.COMMITMENT_MACHINE, _ANSWERS, p.event)


def commitment_of(session: Session, commitment_id: Any) -> Commitment:
    c = session.get(Commitment, commitment_id)
    if c is None:
        raise exchange.OutOfOrder(f"调拨承诺 {commitment_id} 尚未共享至本节点，稍后重试")
    return c


def check_shipment_shared(session: Session, p: ShipmentShared, sender: exchange.Sender) -> None:
    c = commitment_of(session, p.commitment_id)
    req = request_of(session, p.request_id)
    if c.request_id != req.id or c.giver_jurisdiction != p.giver_jurisdiction:
        raise exchange.Refused("not-allowed", "发运单与承诺不符")
    if p.requester_jurisdiction != req.requester_jurisdiction or sender.target_jurisdiction != (
        req.requester_jurisdiction
    ):
        raise exchange.Refused("not-allowed", "发运单只发给请求方")
    if p.destination_code != req.destination_code:
        raise _bad("发运目的地与请求不符")
    codes = [b.code for b in p.boxes]
    if len(set(codes)) != len(codes) or any(not c_.startswith(f"{p.number}-") for c_ in codes):
        raise _bad("箱号重复或与发运单号不符")
    known = catalogue().items
    if any(b.item not in known for b in p.boxes):
        raise _bad("物资目录中没有箱内物资")
    if p.events[0].action != domain.ShipmentAction.DISPATCH.value:
        raise _bad("发运单的首个记录须为发运")
    for ev in p.events:
        check_step(domain.SHIPMENT_MACHINE, domain.ShipmentAction.DISPATCH.value, ev)
    if p.counts is not None and not set(p.counts) <= set(codes):
        raise _bad("签收箱号与发运单不符")


def check_shipment_changed(
    session: Session, p: ShipmentChanged, sender: exchange.Sender, rec: Shipment
) -> None:
    if p.request_id != rec.request_id:
        raise _bad("发运单与请求不符")
    check_step(domain.SHIPMENT_MACHINE, domain.ShipmentAction.DISPATCH.value, p.event)
    if p.counts is not None:
        codes = {b["code"] for b in rec.boxes}
        if not set(p.counts) <= codes:
            raise _bad("签收箱号与发运单不符")


def shipment_writer(rec: Shipment, p: Any) -> str:
    """The jurisdiction whose node may send a shipment's change: the giver's for its
    dispatch, the requester's for what happens once it is on its way."""
    event = p["event"] if isinstance(p, Mapping) else p.event
    action = event["action"] if isinstance(event, Mapping) else event.action
    try:
        side = domain.SHIPMENT_WRITER[domain.ShipmentAction(action)]
    except ValueError:
        side = domain.Side.GIVER
    if side is domain.Side.REQUESTER:
        return rec.requester_jurisdiction
    return rec.giver_jurisdiction


__all__ = [
    "CommitmentChanged",
    "CommitmentShared",
    "RequestChanged",
    "RequestShared",
    "ShipmentChanged",
    "ShipmentShared",
    "check_step",
    "shipment_writer",
]
