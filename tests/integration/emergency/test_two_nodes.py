"""Mutual aid across two nodes in one process (SQLite and PostgreSQL), each with its own
database, settings and app, over signed HTTP: node A serves 上海 and 安徽, node B 江苏
and 浙江. 合肥 (安徽, A) asks 江苏 and 浙江 (both B) for test kits; 江苏 commits part and
ships it, 浙江 declines; 合肥 receives; 江苏's commitment is fulfilled on B and the
request closes on A. Every step is an event on both nodes, exactly once and in the same
order; A being down while B ships delays nothing but the delivery; a message delivered
again changes nothing; every unit that left B's stock is in A's stock or in the
receipt's explained difference; B's stock aggregate reaches A's reserve table. A node
sending a step it may not take for the record is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from integration.emergency.kit import point, staff, stocked
from tongban.emergency import aid, sharing, stock
from tongban.emergency.aid import DispatchLine
from tongban.emergency.copies import COMMITMENTS, SHIPMENTS
from tongban.emergency.domain import Duty
from tongban.emergency.models import (
    AidRequest,
    Commitment,
    SharedStock,
    Shipment,
    StockEvent,
    StockLot,
)
from tongban.exchange import service as exchange
from tongban.exchange.models import InboxMessage, OutboxMessage

HEFEI, SUZHOU, HANGZHOU = "340100", "320500", "330100"


def _events(node: Any, model: Any, number: str) -> list[tuple[int, str, str | None, str, str]]:
    with node.session() as s:
        rec = s.scalar(select(model).where(model.number == number))
        assert rec is not None, (node.id, number)
        return [(e.seq, e.action, e.from_state, e.to_state, str(e.id)) for e in rec.events]


def _count(node: Any, model: Any, number: str) -> int:
    with node.session() as s:
        return int(s.scalar(select(func.count()).where(model.number == number)) or 0)


def _lot_total(node: Any, point_id: Any) -> int:
    with node.session() as s:
        return int(
            s.scalar(select(func.sum(StockLot.quantity)).where(StockLot.point_id == point_id)) or 0
        )


def test_a_request_from_hefei_is_answered_shipped_and_received_across_nodes(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    with a.session() as s:
        hefei = staff(s, HEFEI)
        dest = point(s, HEFEI)
        s.commit()
        hefei_id, dest_code, dest_id = hefei.id, dest.code, dest.id
    with b.session() as s:
        jiangsu = staff(s, SUZHOU)
        zhejiang = staff(s, HANGZHOU, Duty.COORDINATOR)
        src = point(s, SUZHOU)
        stocked(s, src, "TST-AG", 7000, batch="JS1")
        s.commit()
        js_id, zj_id, src_code, src_id = jiangsu.id, zhejiang.id, src.code, src.id

    with a.session() as s:
        req = aid.request_aid(
            s,
            s.get(type(hefei), hefei_id),
            city_code=HEFEI,
            destination_code=dest_code,
            urgency="urgent",
            title="合肥市聚集性疫情筛查",
            lines=[("TST-AG", 10000)],
            targets=["320000", "330000"],
        )
        s.commit()
        req_id, number = req.id, req.number
    shared = [
        m
        for m in a.outbox(type="emergency.request.shared")
        if m.payload["request_id"] == str(req_id)
    ]
    assert sorted(m.target_jurisdiction for m in shared) == ["320000", "330000"]
    tools.drain(a, b)
    assert _count(b, AidRequest, number) == 1  # one copy, for both asked jurisdictions
    assert _events(b, AidRequest, number) == _events(a, AidRequest, number)

    with b.session() as s:
        c = aid.commit(s, s.get(type(hefei), js_id), req_id, [("TST-AG", 6000)])
        aid.decline(s, s.get(type(hefei), zj_id), req_id, "浙江库存需保障本省")
        s.commit()
        c_number = c.number
    tools.drain(a, b)
    with a.session() as s:
        copy = s.get(AidRequest, req_id)
        assert copy is not None and copy.state == "open"
        assert sorted((c.giver_jurisdiction, c.state, c.replica) for c in copy.commitments) == [
            ("320000", "committed", True),
            ("330000", "declined", True),
        ]

    with b.session() as s:
        sh = aid.dispatch(
            s,
            s.get(type(hefei), js_id),
            s.scalar(select(Commitment.id).where(Commitment.number == c_number)),
            point_code=src_code,
            vehicle="苏E·12345",
            driver="张师傅",
            lines=[DispatchLine("TST-AG", 6000, 2000)],
        )
        s.commit()
        sh_number, boxes = sh.number, [dict(x) for x in sh.boxes]
    assert _lot_total(b, src_id) == 1000
    hosts.down.add(a.host)  # node A is down while B ships
    b.dispatch()
    pending = [m for m in b.outbox(status="pending") if m.payload.get("request_id") == str(req_id)]
    assert {m.type for m in pending} >= {
        "emergency.shipment.shared",
        "emergency.commitment.changed",
    }
    assert all(m.attempts >= 1 for m in pending)
    hosts.down.clear()
    with b.session() as s:  # as the back-off would, after a while
        for m in pending:
            row = s.get(OutboxMessage, m.id)
            assert row is not None
            row.next_attempt_at = row.created_at
        s.commit()
    tools.drain(a, b)
    assert _events(a, Shipment, sh_number) == _events(b, Shipment, sh_number)
    assert _events(a, Commitment, c_number) == _events(b, Commitment, c_number)
    assert [e[1] for e in _events(a, Commitment, c_number)] == ["commit", "dispatched"]

    counts = {x["code"]: x["quantity"] for x in boxes}
    counts[boxes[-1]["code"]] -= 5
    with a.session() as s:
        aid.receive(
            s,
            s.get(type(hefei), hefei_id),
            s.scalar(select(Shipment.id).where(Shipment.number == sh_number)),
            counts,
            "一箱短少5人份",
        )
        s.commit()
    tools.drain(a, b)

    # The receipt reached B, B fulfilled its commitment, A closed the request, B learnt it.
    assert [e[1] for e in _events(b, Shipment, sh_number)] == ["dispatch", "receive"]
    assert [e[1] for e in _events(a, Commitment, c_number)] == ["commit", "dispatched", "fulfil"]
    assert [e[1] for e in _events(b, AidRequest, number)] == ["submit", "close"]
    for model, n in ((AidRequest, number), (Commitment, c_number), (Shipment, sh_number)):
        assert _events(a, model, n) == _events(b, model, n), model
        assert _count(a, model, n) == 1 and _count(b, model, n) == 1
    with b.session() as s:
        copy_sh = s.scalar(select(Shipment).where(Shipment.number == sh_number))
        assert copy_sh is not None and copy_sh.receipt == [
            {"item": "TST-AG", "shipped": 6000, "received": 5995, "difference": -5}
        ]
        assert copy_sh.receipt_note == "一箱短少5人份"
    # Every unit: 6,000 left 苏州, 5,995 are in 合肥's stock, 5 are the explained difference.
    assert _lot_total(b, src_id) == 1000 and _lot_total(a, dest_id) == 5995
    with a.session() as s:
        moved = s.scalar(
            select(func.sum(StockEvent.payload["delta"].as_integer()))
            .join(StockLot)
            .where(StockLot.point_id == dest_id, StockEvent.action == "aid_in")
        )
        assert moved == 5995
    for node in (a, b):
        assert node.outbox(status="dead") == []
        assert node.outbox(status="pending") == []

    # Delivered again (the sender never heard the answer): nothing changes.
    (shipped,) = [
        m for m in b.outbox(type="emergency.shipment.shared") if m.payload["number"] == sh_number
    ]
    with b.session() as s:
        row = s.get(OutboxMessage, shipped.id)
        assert row is not None
        row.status, row.next_attempt_at = "pending", row.created_at
        s.commit()
    assert b.dispatch() == 1
    assert _count(a, Shipment, sh_number) == 1 and _lot_total(a, dest_id) == 5995
    with a.session() as s:
        assert s.scalar(select(func.count()).where(InboxMessage.id == shipped.id)) == 1

    # B's stock aggregate (published when its stock moved) is in A's reserve table.
    with a.session() as s:
        row = s.get(SharedStock, ("320000", SUZHOU, "TST-AG"))
        assert row is not None and row.quantity >= 1000 and row.source_node == "node-b"
        viewer = s.get(type(hefei), hefei_id)
        shown = stock.table(s, viewer, stock.Filters(city_code=SUZHOU, item_code="TST-AG"))
        assert [(r.shared, r.quantity) for r in shown] == [(True, row.quantity)]


def test_a_node_may_not_take_the_other_sides_steps(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    with a.session() as s:
        hefei = staff(s, HEFEI)
        dest = point(s, HEFEI)
        req = aid.request_aid(
            s,
            hefei,
            city_code=HEFEI,
            destination_code=dest.code,
            urgency="routine",
            title="防汛物资",
            lines=[("LIV-TENT", 10)],
            targets=["320000"],
        )
        s.commit()
        req_id = req.id
    tools.drain(a, b)
    with b.session() as s:
        src = point(s, SUZHOU)
        stocked(s, src, "LIV-TENT", 10, batch="")
        js = staff(s, SUZHOU)
        c = aid.commit(s, js, req_id, [("LIV-TENT", 10)])
        sh = aid.dispatch(
            s, js, c.id, point_code=src.code, vehicle="苏E", lines=[DispatchLine("LIV-TENT", 10, 5)]
        )
        s.commit()
        snapshot = COMMITMENTS.snapshot_payload(s, c)
        sh_snapshot = SHIPMENTS.snapshot_payload(s, sh)
        forged_receipt = {**SHIPMENTS.change_payload(s, sh, sh.events[0], None)}
    tools.drain(a, b)
    node_b = exchange.Sender("node-b", frozenset({"320000", "330000"}), "320000", "340000")
    node_b_as_zj = exchange.Sender("node-b", frozenset({"320000", "330000"}), "330000", "340000")
    with a.session() as s:
        # A commitment by a jurisdiction that was not asked.
        stranger = {
            **snapshot,
            "giver_jurisdiction": "330000",
            "number": snapshot["number"][:-6] + "330000",
        }
        with pytest.raises(exchange.Refused) as refused:
            exchange.check(
                s, COMMITMENTS.snapshot_type, json.loads(json.dumps(stranger)), node_b_as_zj
            )
        assert refused.value.reason == "not-allowed"
        # The giver's node sending the receipt of a shipment on its way: only the
        # requester's node receives it.
        receipt = {
            **forged_receipt,
            "seq": 2,
            "event": {
                **forged_receipt["event"],
                "seq": 2,
                "action": "receive",
                "from_state": "in_transit",
                "to_state": "received",
            },
            "state": "received",
        }
        with pytest.raises(exchange.Refused) as refused:
            exchange.check(s, SHIPMENTS.change_type, json.loads(json.dumps(receipt)), node_b)
        assert refused.value.reason == "not-allowed"
        # A shipment whose boxes do not belong to it.
        bad = {
            **sh_snapshot,
            "boxes": [{**sh_snapshot["boxes"][0], "code": "FY999999202601010001-001"}],
        }
        with pytest.raises(exchange.Refused):
            exchange.check(s, SHIPMENTS.snapshot_type, json.loads(json.dumps(bad)), node_b)


def test_a_stock_aggregate_names_only_the_senders_cities(fed: dict[str, Any]) -> None:
    a = fed["node-a"]
    payload = {
        "jurisdiction": "320000",
        "as_of": "2026-12-01T00:00:00+00:00",
        "rows": [
            {
                "city": HEFEI,
                "item": "TST-AG",
                "quantity": 1,
                "available": 1,
                "expiring": 0,
                "points": 1,
            }
        ],
        "seq": 99,
    }
    sender = exchange.Sender("node-b", frozenset({"320000", "330000"}), "320000", "340000")
    with a.session() as s, pytest.raises(exchange.Refused):
        exchange.check(s, sharing.STOCK_PUBLISHED, payload, sender)
