"""Drill mode (演练): an exercise of one jurisdiction run on copied data.

Starting a drill copies every stock lot of the jurisdiction that holds stock into
``emergency_drill_lot`` rows carrying the drill's id, and the latest capacity report of
each of its hospitals into the drill. The drill's requests, commitments, dispatches and
receipts then move only those copies: nothing here writes a real lot, a stock event or
an aid record, and nothing is published to other nodes. A drill ends closed (its copies
and requests kept with a summary) or discarded (its copies and requests deleted, the
summary kept). Services take a session and never commit."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.emergency import access, capacity
from tongban.emergency.capacity_models import Drill, DrillLot, DrillRequest
from tongban.emergency.catalogue import catalogue
from tongban.emergency.domain import Duty
from tongban.emergency.models import ReservePoint, StockLot
from tongban.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.regions import service as regions

OPEN, CLOSED, DISCARDED = "open", "closed", "discarded"
STATE_LABELS = {OPEN: "进行中", CLOSED: "已结束", DISCARDED: "已作废"}
REQUESTED, COMMITTED, DISPATCHED, RECEIVED, DECLINED = (
    "requested",
    "committed",
    "dispatched",
    "received",
    "declined",
)
REQUEST_LABELS = {
    REQUESTED: "待承诺",
    COMMITTED: "已承诺",
    DISPATCHED: "已发运",
    RECEIVED: "已接收",
    DECLINED: "无法支援",
}
#: Where a drill receipt is booked at the requesting city.
RECEIPT_POINT = "演练接收点"
MAX_QUANTITY = 10_000_000


def is_runner(session: Session, actor: Account, jurisdiction: str) -> bool:
    return actor.role == Role.ADMIN or any(
        d.duty == Duty.COORDINATOR.value and d.jurisdiction_code == jurisdiction
        for d in access.duties_of(session, actor)
    )


def require_runner(session: Session, actor: Account, drill: Drill) -> None:
    if not is_runner(session, actor, drill.jurisdiction_code):
        raise PermissionDenied("须由本辖区的应急物资调度员组织演练", type="no-duty")


def start(session: Session, actor: Account, *, title: str, jurisdiction: str) -> Drill:
    """A new drill of `jurisdiction` on a copy of its current stock and capacity."""
    title = title.strip()
    errors = []
    if not title or len(title) > 200:
        errors.append(FieldError("title", "演练名称为 1 至 200 个字符"))
    known = {j.code for j in regions.list_jurisdictions(session)}
    if jurisdiction not in known:
        errors.append(FieldError("jurisdiction", "辖区不存在"))
    if errors:
        raise ValidationFailed("演练信息有误", errors=errors)
    if not exchange.serves_here(session, jurisdiction):
        raise PermissionDenied("本节点不服务于该辖区", type="not-served")
    if not is_runner(session, actor, jurisdiction):
        raise PermissionDenied("须由本辖区的应急物资调度员组织演练", type="no-duty")
    reports = capacity.latest(session, jurisdictions=[jurisdiction])
    drill = Drill(
        title=title,
        jurisdiction_code=jurisdiction,
        state=OPEN,
        capacity=[capacity.to_json(r) for r in reports],
        started_by=actor.id,
        started_at=utcnow(),
    )
    session.add(drill)
    session.flush()
    lots = session.execute(
        select(
            StockLot.id,
            StockLot.point_id,
            StockLot.city_code,
            StockLot.item_code,
            StockLot.batch,
            StockLot.expiry,
            StockLot.quantity,
        ).where(StockLot.jurisdiction_code == jurisdiction, StockLot.quantity > 0)
    ).all()
    codes = {
        pid: code
        for pid, code in session.execute(
            select(ReservePoint.id, ReservePoint.code).where(
                ReservePoint.jurisdiction_code == jurisdiction
            )
        )
    }
    session.add_all(
        [
            DrillLot(
                drill_id=drill.id,
                source_lot_id=lot_id,
                point_code=codes.get(point_id, ""),
                jurisdiction_code=jurisdiction,
                city_code=city,
                item_code=item,
                batch=batch,
                expiry=expiry,
                quantity=quantity,
                copied=quantity,
            )
            for lot_id, point_id, city, item, batch, expiry, quantity in lots
        ]
    )
    session.flush()
    return drill


def get(session: Session, drill_id: uuid.UUID) -> Drill:
    drill = session.get(Drill, drill_id)
    if drill is None:
        raise NotFound("演练不存在", type="unknown-drill")
    return drill


def list_drills(session: Session, actor: Account) -> list[Drill]:
    access.require_viewer(session, actor)
    served = [
        j.code for j in regions.list_jurisdictions(session) if exchange.serves_here(session, j.code)
    ]
    return list(
        session.scalars(
            select(Drill)
            .where(Drill.jurisdiction_code.in_(served))
            .order_by(Drill.started_at.desc())
        )
    )


def _require_open(drill: Drill) -> None:
    if drill.state != OPEN:
        raise Conflict(f"演练{STATE_LABELS[drill.state]}，不能再操作", type="drill-closed")


def stock(session: Session, drill: Drill) -> list[tuple[str, str, int, int]]:
    """(city, item, quantity now, quantity copied) of the drill's copies."""
    rows = session.execute(
        select(
            DrillLot.city_code,
            DrillLot.item_code,
            func.sum(DrillLot.quantity),
            func.sum(DrillLot.copied),
        )
        .where(DrillLot.drill_id == drill.id)
        .group_by(DrillLot.city_code, DrillLot.item_code)
        .order_by(DrillLot.city_code, DrillLot.item_code)
    ).all()
    return [(c, i, int(q or 0), int(k or 0)) for c, i, q, k in rows]


def held(session: Session, drill: Drill, city: str, item: str) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(DrillLot.quantity), 0)).where(
                DrillLot.drill_id == drill.id,
                DrillLot.city_code == city,
                DrillLot.item_code == item,
            )
        )
        or 0
    )


def requests(session: Session, drill: Drill) -> list[DrillRequest]:
    return list(
        session.scalars(
            select(DrillRequest)
            .where(DrillRequest.drill_id == drill.id)
            .order_by(DrillRequest.created_at)
        )
    )


def _step(r: DrillRequest, step: str, actor: Account, quantity: int) -> None:
    r.steps = [
        *r.steps,
        {"step": step, "at": utcnow().isoformat(), "by": actor.display_name, "quantity": quantity},
    ]


def _quantity(raw: int, field: str = "quantity") -> int:
    if not 1 <= raw <= MAX_QUANTITY:
        raise ValidationFailed(
            "数量不正确", errors=[FieldError(field, f"须为 1 至 {MAX_QUANTITY} 的整数")]
        )
    return raw


def request(
    session: Session,
    actor: Account,
    drill: Drill,
    *,
    requester_city: str,
    giver_city: str,
    item_code: str,
    quantity: int,
) -> DrillRequest:
    require_runner(session, actor, drill)
    _require_open(drill)
    cities = {c.code for c in regions.list_cities(session)}
    errors = []
    if requester_city not in cities:
        errors.append(FieldError("requester_city", "城市不存在"))
    if giver_city not in cities:
        errors.append(FieldError("giver_city", "城市不存在"))
    if requester_city == giver_city:
        errors.append(FieldError("giver_city", "支援城市不能与请求城市相同"))
    if item_code not in catalogue().items:
        errors.append(FieldError("item_code", "物资编码不在目录中"))
    if errors:
        raise ValidationFailed("演练请求有误", errors=errors)
    r = DrillRequest(
        drill_id=drill.id,
        requester_city=requester_city,
        giver_city=giver_city,
        item_code=item_code,
        quantity=_quantity(quantity),
        state=REQUESTED,
        steps=[],
    )
    _step(r, REQUESTED, actor, quantity)
    session.add(r)
    session.flush()
    return r


def get_request(session: Session, request_id: uuid.UUID) -> tuple[Drill, DrillRequest]:
    r = session.get(DrillRequest, request_id)
    if r is None:
        raise NotFound("演练请求不存在", type="unknown-drill-request")
    return get(session, r.drill_id), r


def _expect(r: DrillRequest, state: str) -> None:
    if r.state != state:
        raise Conflict(
            f"该请求{REQUEST_LABELS[r.state]}，不能执行此操作", type="drill-request-state"
        )


def commit(session: Session, actor: Account, request_id: uuid.UUID, quantity: int) -> DrillRequest:
    """The giver city commits `quantity` (0: it cannot help), at most what was asked
    and what its drill copies hold."""
    drill, r = get_request(session, request_id)
    require_runner(session, actor, drill)
    _require_open(drill)
    _expect(r, REQUESTED)
    if quantity == 0:
        r.state = DECLINED
        _step(r, DECLINED, actor, 0)
        session.flush()
        return r
    _quantity(quantity)
    if quantity > r.quantity:
        raise ValidationFailed(
            "承诺数量超过请求数量", errors=[FieldError("quantity", f"最多 {r.quantity}")]
        )
    have = held(session, drill, r.giver_city, r.item_code)
    if quantity > have:
        raise ValidationFailed(
            "演练库存不足", errors=[FieldError("quantity", f"演练库存仅 {have}")]
        )
    r.committed = quantity
    r.state = COMMITTED
    _step(r, COMMITTED, actor, quantity)
    session.flush()
    return r


def dispatch(session: Session, actor: Account, request_id: uuid.UUID) -> DrillRequest:
    """Ship the committed quantity out of the giver city's drill copies, the lots that
    expire first first."""
    drill, r = get_request(session, request_id)
    require_runner(session, actor, drill)
    _require_open(drill)
    _expect(r, COMMITTED)
    lots = list(
        session.scalars(
            select(DrillLot)
            .where(
                DrillLot.drill_id == drill.id,
                DrillLot.city_code == r.giver_city,
                DrillLot.item_code == r.item_code,
                DrillLot.quantity > 0,
            )
            .order_by(DrillLot.expiry.is_(None), DrillLot.expiry, DrillLot.id)
            .with_for_update()
        )
    )
    need = r.committed
    if sum(lot.quantity for lot in lots) < need:
        raise Conflict("演练库存已不足以发运承诺数量", type="drill-short")
    for lot in lots:
        take = min(lot.quantity, need)
        lot.quantity -= take
        need -= take
        if need == 0:
            break
    r.dispatched = r.committed
    r.state = DISPATCHED
    _step(r, DISPATCHED, actor, r.dispatched)
    session.flush()
    return r


def receive(session: Session, actor: Account, request_id: uuid.UUID, counted: int) -> DrillRequest:
    """The requester counts what arrived; it is booked on the drill's receipt point of
    the requesting city."""
    drill, r = get_request(session, request_id)
    require_runner(session, actor, drill)
    _require_open(drill)
    _expect(r, DISPATCHED)
    if not 0 <= counted <= r.dispatched:
        raise ValidationFailed(
            "清点数量不正确", errors=[FieldError("counted", f"须为 0 至 {r.dispatched}")]
        )
    lot = session.scalar(
        select(DrillLot).where(
            DrillLot.drill_id == drill.id,
            DrillLot.city_code == r.requester_city,
            DrillLot.item_code == r.item_code,
            DrillLot.source_lot_id.is_(None),
        )
    )
    if lot is None:
        lot = DrillLot(
            drill_id=drill.id,
            source_lot_id=None,
            point_code=RECEIPT_POINT,
            jurisdiction_code=drill.jurisdiction_code,
            city_code=r.requester_city,
            item_code=r.item_code,
            batch="",
            expiry=None,
            quantity=0,
            copied=0,
        )
        session.add(lot)
    lot.quantity += counted
    r.received = counted
    r.state = RECEIVED
    _step(r, RECEIVED, actor, counted)
    session.flush()
    return r


@dataclass(frozen=True)
class Summary:
    requests: int
    by_state: dict[str, int]
    asked: int
    committed: int
    dispatched: int
    received: int
    lost: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_state": self.by_state,
            "asked": self.asked,
            "committed": self.committed,
            "dispatched": self.dispatched,
            "received": self.received,
            "lost": self.lost,
        }


def summarise(session: Session, drill: Drill) -> Summary:
    rs = requests(session, drill)
    by_state: dict[str, int] = defaultdict(int)
    for r in rs:
        by_state[r.state] += 1
    dispatched = sum(r.dispatched for r in rs)
    received = sum(r.received for r in rs if r.state == RECEIVED)
    in_transit = sum(r.dispatched for r in rs if r.state == DISPATCHED)
    return Summary(
        requests=len(rs),
        by_state=dict(by_state),
        asked=sum(r.quantity for r in rs),
        committed=sum(r.committed for r in rs),
        dispatched=dispatched,
        received=received,
        lost=dispatched - received - in_transit,
    )


def close(session: Session, actor: Account, drill_id: uuid.UUID, *, discard: bool = False) -> Drill:
    """End the drill: closed keeps its copies and requests; discarded deletes them.
    Either way the summary is kept on the drill."""
    drill = get(session, drill_id)
    require_runner(session, actor, drill)
    _require_open(drill)
    drill.summary = summarise(session, drill).as_dict()
    drill.state = DISCARDED if discard else CLOSED
    drill.closed_at = utcnow()
    if discard:
        session.execute(delete(DrillRequest).where(DrillRequest.drill_id == drill.id))
        session.execute(delete(DrillLot).where(DrillLot.drill_id == drill.id))
    session.flush()
    return drill
