"""Mutual aid on one node serving every jurisdiction (SQLite and PostgreSQL): 合肥 asks
上海 and 浙江 for test kits; 上海 commits part and ships it in two consignments packed
first-expiring-first-out, 浙江 declines; 合肥 receives both (one box short, explained),
the commitment is fulfilled and the request closes itself. Every step is an event of its
record, every stock movement an event of its lot, and the stock adds up to the unit.
Every message goes through the outbox even here, and its local delivery changes nothing.
Also: who may take each step, what is refused, cancellation, and the watch's
escalation past the time targets."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integration.emergency.kit import point, staff, stocked
from tongban.emergency import aid, deadlines
from tongban.emergency.aid import DispatchLine
from tongban.emergency.domain import Duty
from tongban.emergency.models import (
    AidRequest,
    Alert,
    Commitment,
    ReservePoint,
    Shipment,
    StockLot,
)
from tongban.errors import Conflict, PermissionDenied, ValidationFailed
from tongban.exchange.models import OutboxMessage
from tongban.kernel.lifecycle import IllegalTransition

from builders import drain

HEFEI, SHANGHAI, HANGZHOU = "340100", "310000", "330100"


def _stock(session: Session, where: ReservePoint) -> dict[tuple[str, str], int]:
    return {
        (lot.item_code, lot.batch): lot.quantity
        for lot in session.scalars(select(StockLot).where(StockLot.point_id == where.id))
    }


def _actions(record: Any) -> list[str]:
    return [e.action for e in record.events]


def _setup(session: Session) -> dict[str, Any]:
    people = {
        "hefei": staff(session, HEFEI),
        "shanghai": staff(session, SHANGHAI),
        "zhejiang": staff(session, HANGZHOU, Duty.COORDINATOR),
    }
    dest, src = point(session, HEFEI), point(session, SHANGHAI)
    stocked(session, src, "TST-AG", 3000, batch="A1", expiry=date(2027, 3, 1))
    stocked(session, src, "TST-AG", 5000, batch="A2", expiry=date(2028, 3, 1))
    stocked(session, src, "TST-AG", 9000, batch="A0", expiry=date(2020, 1, 1))  # expired
    return {**people, "dest": dest, "src": src}


def _request(session: Session, s: dict[str, Any], quantity: int = 10000) -> AidRequest:
    return aid.request_aid(
        session,
        s["hefei"],
        city_code=HEFEI,
        destination_code=s["dest"].code,
        urgency="immediate",
        title="聚集性疫情大规模筛查",
        contact="王调度 0551-12345678",
        lines=[("TST-AG", quantity)],
        targets=["310000", "330000"],
    )


def _ship(
    session: Session,
    s: dict[str, Any],
    c: Commitment,
    quantity: int,
    per_box: int,
    vehicle: str,
    *,
    by: str = "shanghai",
    driver: str = "",
) -> Shipment:
    """`by` dispatches `quantity` test kits of commitment `c` from 上海's point, `per_box`
    to a box."""
    return aid.dispatch(
        session,
        s[by],
        c.id,
        point_code=s["src"].code,
        vehicle=vehicle,
        driver=driver,
        lines=[DispatchLine("TST-AG", quantity, per_box)],
    )


def _as_shipped(sh: Shipment) -> dict[str, int]:
    """A shipment's boxes counted as they were packed."""
    return {b["code"]: b["quantity"] for b in sh.boxes}


def test_request_commit_ship_receive_and_close_with_every_unit_accounted(
    session: Session, factory: sessionmaker[Session]
) -> None:
    s = _setup(session)
    req = _request(session, s)
    assert req.number.startswith(f"HZ{HEFEI}") and len(req.number) == 20
    assert req.state == "open" and _actions(req) == ["submit"]
    assert req.respond_due_at < req.arrive_due_at

    c = aid.commit(session, s["shanghai"], req.id, [("TST-AG", 6000)], "分两批发运")
    assert c.number == f"{req.number}-310000" and c.state == "committed"
    declined = aid.decline(session, s["zhejiang"], req.id, "本省库存需保障本地筛查")
    assert declined.state == "declined" and declined.lines == []
    assert req.state == "open"  # 上海 still has to deliver

    first = _ship(session, s, c, 4000, 1000, "沪A·D1234", driver="李师傅")
    # First expiring first: the 3,000 of A1, then 1,000 of A2; never the expired A0.
    assert [(b["batch"], b["quantity"]) for b in first.boxes] == [
        ("A1", 1000),
        ("A1", 1000),
        ("A1", 1000),
        ("A2", 1000),
    ]
    assert [b["code"] for b in first.boxes] == [f"{first.number}-00{n}" for n in range(1, 5)]
    assert c.state == "committed"
    with pytest.raises(ValidationFailed) as refused:  # more than is left of the commitment
        _ship(session, s, c, 2001, 1000, "沪A·D1235")
    assert refused.value.errors[0].field == "lines.0.quantity"
    second = _ship(session, s, c, 2000, 1500, "沪A·D1235")
    assert c.state == "dispatched" and _actions(c) == ["commit", "dispatched"]
    assert _stock(session, s["src"]) == {
        ("TST-AG", "A1"): 0,
        ("TST-AG", "A2"): 2000,
        ("TST-AG", "A0"): 9000,
    }

    counts = _as_shipped(first)
    counts[first.boxes[0]["code"]] = 990
    with pytest.raises(ValidationFailed) as refused:  # a difference must be explained
        aid.receive(session, s["hefei"], first.id, counts)
    assert refused.value.errors[0].field == "note"
    aid.receive(session, s["hefei"], first.id, counts, "一箱外包装破损，少10人份")
    assert first.receipt == [
        {"item": "TST-AG", "shipped": 4000, "received": 3990, "difference": -10}
    ]
    with pytest.raises(IllegalTransition):  # received exactly once
        aid.receive(session, s["hefei"], first.id, counts, "again")
    aid.receive(session, s["hefei"], second.id, _as_shipped(second))

    assert c.state == "fulfilled" and _actions(c) == ["commit", "dispatched", "fulfil"]
    assert req.state == "closed" and _actions(req) == ["submit", "close"]
    assert req.events[-1].payload == {"received": [{"item": "TST-AG", "quantity": 5990}]}
    assert _actions(first) == ["dispatch", "receive"]
    assert _stock(session, s["dest"]) == {("TST-AG", "A1"): 2990, ("TST-AG", "A2"): 3000}
    # Every unit: 6,000 left 上海, 5,990 arrived in 合肥, 10 are the explained difference.
    out = sum(
        -e.payload["delta"]
        for lot in session.scalars(select(StockLot).where(StockLot.point_id == s["src"].id))
        for e in lot.events
        if e.action == "dispatch"
    )
    assert out == 6000

    session.commit()
    drain(factory)
    dead = list(session.scalars(select(OutboxMessage).where(OutboxMessage.status == "dead")))
    assert [(m.type, m.last_error) for m in dead] == []
    session.expire_all()
    again = session.get(AidRequest, req.id)
    assert again is not None and _actions(again) == ["submit", "close"]  # local delivery: no-op
    sent = {
        m.type
        for m in session.scalars(select(OutboxMessage))
        if (m.payload or {}).get("request_id") == str(req.id)
    }
    assert sent == {
        "emergency.request.shared",
        "emergency.request.changed",
        "emergency.commitment.shared",
        "emergency.commitment.changed",
        "emergency.shipment.shared",
        "emergency.shipment.changed",
    }


def test_who_may_take_each_step(session: Session) -> None:
    s = _setup(session)
    other_city = staff(session, "340200")
    req = _request(session, s)
    with pytest.raises(PermissionDenied):  # the requester does not answer its own request
        aid.commit(session, s["hefei"], req.id, [("TST-AG", 1)])
    with pytest.raises(ValidationFailed) as refused:  # more than 上海's usable stock
        aid.commit(session, s["shanghai"], req.id, [("TST-AG", 8001)])
    assert "可用库存" in refused.value.errors[0].message
    with pytest.raises(ValidationFailed):  # more than asked
        aid.commit(session, s["shanghai"], req.id, [("TST-AG", 10001)])
    c = aid.commit(session, s["shanghai"], req.id, [("TST-AG", 100)])
    with pytest.raises(Conflict):  # one answer per jurisdiction
        aid.decline(session, s["shanghai"], req.id, "x")
    with pytest.raises(PermissionDenied):  # 浙江 does not ship 上海's commitment
        _ship(session, s, c, 10, 10, "x", by="zhejiang")
    sh = _ship(session, s, c, 100, 100, "沪B")
    counts = _as_shipped(sh)
    for who in (s["shanghai"], other_city):
        with pytest.raises(PermissionDenied):
            aid.receive(session, who, sh.id, counts)
    with pytest.raises(IllegalTransition, match="已有物资发运"):
        aid.cancel(session, s["hefei"], req.id, "不需要了")


def test_a_cancelled_request_withdraws_what_was_not_shipped(session: Session) -> None:
    s = _setup(session)
    req = _request(session, s)
    c = aid.commit(session, s["shanghai"], req.id, [("TST-AG", 100)])
    with pytest.raises(ValidationFailed):
        aid.cancel(session, s["hefei"], req.id, " ")
    aid.cancel(session, s["hefei"], req.id, "疫情已控制")
    assert req.state == "cancelled" and c.state == "withdrawn"
    assert c.events[-1].comment == "请求方已撤销请求" and c.events[-1].actor_role == "system"
    with pytest.raises(Conflict):
        aid.commit(session, s["zhejiang"], req.id, [("TST-AG", 1)])


def test_the_watch_escalates_past_the_time_targets(session: Session) -> None:
    s = _setup(session)
    req = _request(session, s)
    start = req.respond_due_at
    assert deadlines.watch(session, start - timedelta(minutes=1))["escalated"] == 0
    counts = deadlines.watch(session, start + timedelta(minutes=1))
    assert counts["escalated"] == 1 and req.escalation_level == 1
    assert _actions(req) == ["submit", "escalate"]
    assert req.events[-1].payload == {"level": 1, "waiting": ["310000", "330000"]}
    keys = {a.key for a in session.scalars(select(Alert).where(Alert.resolved_at.is_(None)))}
    assert {f"request:{req.id}", f"request:{req.id}:310000", f"request:{req.id}:330000"} <= keys
    deadlines.watch(session, start + timedelta(minutes=2))  # nothing new
    assert _actions(req) == ["submit", "escalate"]
    deadlines.watch(session, start + timedelta(hours=3))  # a whole window later: level 2
    assert req.escalation_level == 2 and _actions(req)[-1] == "escalate"

    c = aid.commit(session, s["shanghai"], req.id, [("TST-AG", 100)])
    aid.decline(session, s["zhejiang"], req.id, "无库存")
    assert c.dispatch_due_at is not None
    deadlines.watch(session, c.dispatch_due_at + timedelta(minutes=1))
    assert _actions(c) == ["commit", "escalate"]
    open_keys = {a.key for a in session.scalars(select(Alert).where(Alert.resolved_at.is_(None)))}
    assert f"request:{req.id}" not in open_keys  # everyone answered: resolved
    assert f"commitment:{c.id}" in open_keys

    sh = _ship(session, s, c, 100, 50, "沪C")
    deadlines.watch(session, sh.arrive_due_at + timedelta(minutes=1))
    assert _actions(sh) == ["dispatch", "escalate"] and sh.escalation_level == 1
    aid.receive(session, s["hefei"], sh.id, _as_shipped(sh))
    assert _actions(sh) == ["dispatch", "escalate", "receive"]
    deadlines.watch(session, sh.arrive_due_at + timedelta(minutes=2))
    left = {a.key for a in session.scalars(select(Alert).where(Alert.resolved_at.is_(None)))}
    assert not any(k.startswith((f"shipment:{sh.id}", f"commitment:{c.id}")) for k in left)
    assert req.state == "closed"


def test_a_request_is_checked_before_it_is_sent(session: Session) -> None:
    s = _setup(session)
    with pytest.raises(ValidationFailed) as refused:
        aid.request_aid(
            session,
            s["hefei"],
            city_code=HEFEI,
            destination_code=s["src"].code,  # 上海's point, not 合肥's
            urgency="soon",
            title="",
            lines=[("NOPE", 1)],
            targets=["340000"],  # its own jurisdiction
        )
    fields = {e.field for e in refused.value.errors}
    assert {"destination_code", "urgency", "title", "targets", "lines.0.item_code"} <= fields
    with pytest.raises(PermissionDenied):  # 上海's coordinator does not ask for 合肥
        aid.request_aid(
            session,
            s["shanghai"],
            city_code=HEFEI,
            destination_code=s["dest"].code,
            urgency="urgent",
            title="x",
            lines=[("TST-AG", 1)],
            targets=["310000"],
        )
