"""Reserves on a real database (SQLite and PostgreSQL): movements as events of each lot's
history (in the audit chain, guarded by the lot's version), duties per city, uploads
applied whole or not at all with an error per row, the reserve table with its filters,
quotas, alerts raised and resolved by the watch, and other jurisdictions' published
aggregates applied only when newer."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from integration.emergency.kit import point, serving, staff, stocked
from tongban.audit.models import AuditEntry, AuditPending
from tongban.emergency import access, alerts, sharing, stock, stock_sums
from tongban.emergency.domain import Duty, Movement
from tongban.emergency.models import (
    Alert,
    ReservePoint,
    SharedStock,
    StockAtPoint,
    StockEvent,
    StockLot,
)
from tongban.errors import ConcurrentChange, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage

from builders import make_resident

HEFEI, WUHU = "340100", "340200"


def test_a_keeper_moves_stock_and_every_movement_is_an_event_of_the_lot(session: Session) -> None:
    keeper = staff(session, HEFEI, Duty.KEEPER)
    store = point(session, HEFEI)
    common = {"point_code": store.code, "item_code": "TST-AG", "batch": "AG01"}
    expiry = date(2027, 6, 30)
    stock.move(session, keeper, **common, expiry=expiry, movement="receive", amount=500)
    stock.move(
        session, keeper, **common, expiry=None, movement="issue", amount=120, reason="发热门诊"
    )
    ev = stock.move(session, keeper, **common, expiry=None, movement="count", amount=370)
    lot = session.get(StockLot, ev.lot_id)
    assert lot is not None and lot.quantity == 370 and lot.expiry == expiry
    assert [(e.seq, e.action, e.payload) for e in lot.events] == [
        (1, "receive", {"before": 0, "after": 500, "delta": 500}),
        (2, "issue", {"before": 500, "after": 380, "delta": -120}),
        (3, "count", {"before": 380, "after": 370, "delta": -10}),
    ]
    assert lot.events[1].comment == "发热门诊" and lot.events[1].actor_id == keeper.id
    session.commit()
    subject = f"emergency_lot:{lot.id}"
    audited = session.scalar(
        select(func.count()).where(AuditEntry.subject == subject)
    ) or session.scalar(select(func.count()).where(AuditPending.subject == subject))
    assert audited == 3

    # A batch has one expiry; taking more than held is refused naming the amount.
    with pytest.raises(ValidationFailed) as refused:
        stock.move(session, keeper, **common, expiry=date(2028, 1, 1), movement="receive", amount=1)
    assert refused.value.errors[0].field == "expiry"
    with pytest.raises(ValidationFailed) as refused:
        stock.move(session, keeper, **common, expiry=None, movement="issue", amount=371, reason="x")
    assert refused.value.errors[0].field == "amount" and "库存不足" in refused.value.detail


def test_only_a_keeper_of_the_city_moves_its_stock(session: Session) -> None:
    store = point(session, HEFEI)
    stocked(session, store, "LIV-TENT", 10, batch="")
    for who in (staff(session, WUHU, Duty.KEEPER), staff(session, HEFEI, Duty.COORDINATOR)):
        with pytest.raises(PermissionDenied):
            stock.move(
                session,
                who,
                point_code=store.code,
                item_code="LIV-TENT",
                batch="",
                expiry=None,
                movement="issue",
                amount=1,
                reason="x",
            )
    # A duty is for staff only.
    with pytest.raises(ValidationFailed):
        access.grant(session, None, make_resident(session), Duty.KEEPER, jurisdiction_code="340000")


def test_two_writers_of_one_lot_one_loses_with_a_409(
    committing_factory: sessionmaker[Session],
) -> None:
    """Each writer on its own connection, committing for real: the one that read the lot
    before the other wrote is refused (ConcurrentChange, a 409) and writes nothing. (The
    reader ends its read transaction first: SQLite serialises writers at BEGIN.)"""
    with committing_factory() as s:
        where = point(s, HEFEI)
        lot = stocked(s, where, "TST-AG", 100)
        s.commit()
        lot_id, point_id = lot.id, where.id
    first, second = committing_factory(), committing_factory()
    try:
        b = second.get(StockLot, lot_id)
        second.commit()  # `b` keeps what was read (version 2)
        a = first.get(StockLot, lot_id)
        assert a is not None and b is not None and a.version == b.version
        stock.apply(first, a, Movement.ISSUE, 60, None, "甲")
        first.commit()
        with pytest.raises(ConcurrentChange):
            stock.apply(second, b, Movement.ISSUE, 60, None, "乙")  # read before the first wrote
        second.rollback()
        with committing_factory() as s:
            lot = s.get(StockLot, lot_id)
            assert lot is not None and lot.quantity == 40 and [e.seq for e in lot.events] == [1, 2]
    finally:
        first.close()
        second.close()
        with committing_factory() as s:
            gone = s.get(StockLot, lot_id)
            assert gone is not None
            stock_sums.moved(  # the maintained sums lose what the deleted lot held
                s,
                point_id=point_id,
                jurisdiction_code=gone.jurisdiction_code,
                city_code=gone.city_code,
                item_code=gone.item_code,
                expiry=gone.expiry,
                delta=-gone.quantity,
            )
            s.execute(delete(StockAtPoint).where(StockAtPoint.point_id == point_id))
            s.execute(delete(StockEvent).where(StockEvent.lot_id == lot_id))
            s.execute(delete(StockLot).where(StockLot.id == lot_id))
            s.execute(delete(ReservePoint).where(ReservePoint.id == point_id))
            s.commit()


def _csv(*lines: str) -> bytes:
    return ("储备点编码,物资编码,批号,有效期,数量\n" + "\n".join(lines) + "\n").encode()


def test_an_upload_is_applied_whole_or_not_at_all(session: Session) -> None:
    keeper = staff(session, HEFEI, Duty.KEEPER)
    store, other = point(session, HEFEI), point(session, WUHU)
    before = session.scalar(select(func.count()).select_from(StockEvent))
    bad = _csv(
        f"{store.code},TST-AG,AG01,2027-06-30,5000",
        f"{other.code},TST-AG,AG01,2027-06-30,5",  # not the keeper's city
        "340100-NOPE,LIV-TENT,,,1",  # no such point
        f"{store.code},TST-AG,AG02,,1",  # perishable without expiry
    )
    with pytest.raises(ValidationFailed) as refused:
        stock.upload(session, keeper, bad, "receive")
    assert sorted(e.field for e in refused.value.errors) == [
        "rows.3.point_code",
        "rows.4.point_code",
        "rows.5.expiry",
    ]
    assert "未导入任何数据" in refused.value.detail
    session.rollback()
    assert session.scalar(select(func.count()).select_from(StockEvent)) == before

    keeper = staff(session, HEFEI, Duty.KEEPER)
    store = point(session, HEFEI)
    good = _csv(f"{store.code},TST-AG,AG01,2027-06-30,5000", f"{store.code},DEV-VENT,,,12")
    result = stock.upload(session, keeper, good, "receive")
    assert (result.rows, result.lots_created, result.delta) == (2, 2, 5012)
    again = stock.upload(session, keeper, _csv(f"{store.code},TST-AG,AG01,,4800"), "count")
    assert (again.lots_created, again.delta) == (0, -200)
    (lot,) = stock.lots(session, keeper, point_code=store.code, item_code="TST-AG")
    assert lot.quantity == 4800 and [e.action for e in lot.events] == ["receive", "count"]
    assert lot.events[0].payload == {
        "before": 0,
        "after": 5000,
        "delta": 5000,
        "ref": {"upload": True, "line": 2},
    }


def test_the_reserve_table_per_city_with_filters_and_quotas(session: Session) -> None:
    keeper = staff(session, WUHU)
    a, b = point(session, WUHU), point(session, WUHU)
    today = stock.today()
    stocked(session, a, "TST-AG", 30000, batch="AG1", expiry=today + timedelta(days=400))
    stocked(session, b, "TST-AG", 5000, batch="AG2", expiry=today + timedelta(days=10))
    stocked(session, b, "TST-AG", 2000, batch="AG0", expiry=today - timedelta(days=1))
    stocked(session, a, "DEV-VENT", 80, batch="")
    rows = stock.table(session, keeper, stock.Filters(city_code=WUHU))
    by_item = {r.item_code: r for r in rows}
    ag = by_item["TST-AG"]
    assert (ag.quantity, ag.available, ag.expiring, ag.points) == (37000, 35000, 5000, 2)
    assert ag.minimum == 50000 and ag.low and not ag.shared
    assert not by_item["DEV-VENT"].low  # 80 >= 50

    low = stock.table(session, keeper, stock.Filters(city_code=WUHU, low_only=True))
    low_items = {r.item_code for r in low}
    assert "TST-AG" in low_items and "DEV-VENT" not in low_items
    assert "LIV-TENT" in low_items  # none held at all: below quota too
    stock.set_quota(session, keeper, WUHU, "TST-AG", 30000)
    low = stock.table(session, keeper, stock.Filters(city_code=WUHU, low_only=True))
    assert "TST-AG" not in {r.item_code for r in low}
    expiring = stock.table(session, keeper, stock.Filters(city_code=WUHU, expiring_only=True))
    assert [r.item_code for r in expiring] == ["TST-AG"]
    tests = stock.table(session, keeper, stock.Filters(city_code=WUHU, category="testing"))
    assert {r.item_code for r in tests} == {"TST-AG"}

    with pytest.raises(PermissionDenied):
        stock.table(session, make_resident(session), stock.Filters())


def test_the_watch_raises_and_resolves_alerts(
    factory: sessionmaker[Session], settings: Any
) -> None:
    s = serving(factory, settings, "340000")
    today = stock.today()
    store = point(s, HEFEI)
    near = stocked(s, store, "TST-PCR", 500, batch="P1", expiry=today + timedelta(days=5))
    gone = stocked(s, store, "TST-PCR", 300, batch="P0", expiry=today - timedelta(days=2))
    counts = alerts.check_stock(s)
    assert counts["expiring"] == 1 and counts["expired"] == 1
    open_ = {a.key: a for a in s.scalars(select(Alert).where(Alert.resolved_at.is_(None)))}
    assert f"{HEFEI}:TST-PCR" in open_ and "低于定额" in open_[f"{HEFEI}:TST-PCR"].text
    assert open_[f"lot:{near.id}"].kind == "expiring" and open_[f"lot:{gone.id}"].kind == "expired"
    assert "合肥" in open_[f"lot:{gone.id}"].text
    # A second pass repeats nothing.
    n = s.scalar(select(func.count()).select_from(Alert))
    alerts.check_stock(s)
    assert s.scalar(select(func.count()).select_from(Alert)) == n

    stock.apply(s, gone, Movement.DISPOSE, 300, None, "过期报废")
    stocked(s, store, "TST-PCR", 200000, batch="P2")
    counts = alerts.check_stock(s)
    assert counts["resolved"] == 2
    still = {a.key for a in s.scalars(select(Alert).where(Alert.resolved_at.is_(None)))}
    assert f"lot:{gone.id}" not in still and f"{HEFEI}:TST-PCR" not in still
    assert f"lot:{near.id}" in still
    viewer = staff(s, HEFEI, Duty.COORDINATOR)
    seen = alerts.open_alerts(s, viewer)
    assert seen and {a.city_code for a in seen} == {HEFEI}
    s.close()


def _published(jurisdiction: str, seq: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "jurisdiction": jurisdiction,
        "as_of": "2026-12-01T08:00:00+00:00",
        "rows": rows,
        "seq": seq,
    }


def _row(city: str, item: str, quantity: int) -> dict[str, Any]:
    return {
        "city": city,
        "item": item,
        "quantity": quantity,
        "available": quantity,
        "expiring": 0,
        "points": 1,
    }


def test_another_jurisdictions_aggregate_is_applied_only_when_newer(
    factory: sessionmaker[Session], settings: Any
) -> None:
    s = serving(factory, settings, "340000")
    sender = exchange.Sender("node-js", frozenset({"320000"}), "320000", "340000")
    newer = _published(
        "320000", 2, [_row("320500", "TST-AG", 9000), _row("320100", "DEV-VENT", 40)]
    )
    older = _published("320000", 1, [_row("320500", "TST-AG", 1)])
    parsed = sharing.StockPublished.model_validate_json(json.dumps(newer))
    sharing.authorise(s, parsed, sender)
    sharing.on_stock_published(s, newer, object())
    sharing.on_stock_published(s, older, object())  # late: changes nothing
    held = {(r.city_code, r.item_code): r.quantity for r in s.scalars(select(SharedStock))}
    assert held == {("320500", "TST-AG"): 9000, ("320100", "DEV-VENT"): 40}

    viewer = staff(s, HEFEI, Duty.COORDINATOR)
    rows = stock.table(s, viewer, stock.Filters(jurisdiction="320000"))
    assert {(r.city_code, r.item_code, r.shared) for r in rows} == {
        ("320500", "TST-AG", True),
        ("320100", "DEV-VENT", True),
    }
    newest = _published("320000", 3, [_row("320500", "TST-AG", 8000)])
    sharing.on_stock_published(s, newest, object())
    held = {(r.city_code, r.item_code): r.quantity for r in s.scalars(select(SharedStock))}
    assert held == {("320500", "TST-AG"): 8000}  # replaced whole

    for bad, who in (
        (_published("320000", 4, [_row("330100", "TST-AG", 1)]), sender),  # 杭州 is not 江苏's
        (newest, exchange.Sender("node-x", frozenset({"330000"}), "330000", "340000")),
        (
            _published("340000", 5, []),
            exchange.Sender("node-x", frozenset({"340000"}), "340000", "340000"),
        ),
    ):
        with pytest.raises(exchange.Refused):
            sharing.authorise(s, sharing.StockPublished.model_validate_json(json.dumps(bad)), who)
    s.close()


def test_stock_moved_is_published_once_at_commit(
    factory: sessionmaker[Session], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sharing, "targets", lambda _settings: ["320000"])
    s = serving(factory, settings, "340000")
    before = {m.id for m in s.scalars(select(OutboxMessage))}
    store = point(s, HEFEI)
    stocked(s, store, "TST-AG", 100)
    stocked(s, store, "LIV-TENT", 7, batch="")
    s.commit()
    sent = [m for m in s.scalars(select(OutboxMessage)) if m.id not in before]
    assert [(m.type, m.source_jurisdiction, m.target_jurisdiction) for m in sent] == [
        (sharing.STOCK_PUBLISHED, "340000", "320000")
    ]
    rows = {(r["city"], r["item"]): r["quantity"] for r in sent[0].payload["rows"]}
    assert rows[(HEFEI, "TST-AG")] >= 100 and rows[(HEFEI, "LIV-TENT")] >= 7
    sharing.StockPublished.model_validate_json(json.dumps(sent[0].payload))  # what is sent parses
    assert sent[0].payload["seq"] >= 1
    s.close()


def test_a_lot_unknown_here_is_404(session: Session) -> None:
    from tongban.errors import NotFound

    with pytest.raises(NotFound):
        stock.get_lot(session, uuid.uuid4())
