"""Drill mode on a real database (SQLite and PostgreSQL): a drill copies the jurisdiction's
stock and capacity, its requests are committed, dispatched and received on the copies
only — the real lots, their events and the outbox are provably untouched (sums and
counts before == after) — and it ends closed with a summary or discarded with its
copies deleted; the API and the pages mark everything 演练."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from integration.emergency.kit import point, staff, stocked
from tongban.emergency import capacity, drill
from tongban.emergency.capacity_models import DrillLot, DrillRequest
from tongban.emergency.domain import Duty
from tongban.emergency.models import StockEvent, StockLot
from tongban.errors import Conflict, PermissionDenied, ValidationFailed
from tongban.exchange.models import OutboxMessage

from builders import make_resident, sign_in, token_for

HEFEI, WUHU, NANJING = "340100", "340200", "320100"
PROBLEM = "application/problem+json"


def _real(session: Session) -> tuple[int, int, int, list[tuple[uuid.UUID, int, int]]]:
    """The real stock as a fingerprint: total units, events, outbox messages, each lot."""
    total = session.scalar(select(func.coalesce(func.sum(StockLot.quantity), 0))) or 0
    events = session.scalar(select(func.count()).select_from(StockEvent)) or 0
    outbox = session.scalar(select(func.count()).select_from(OutboxMessage)) or 0
    lots = [
        (i, q, v)
        for i, q, v in session.execute(
            select(StockLot.id, StockLot.quantity, StockLot.version).order_by(StockLot.id)
        )
    ]
    return int(total), int(events), int(outbox), lots


def test_a_drill_runs_on_copies_and_real_stock_is_untouched(session: Session) -> None:
    coordinator = staff(session, HEFEI, Duty.COORDINATOR)
    hefei, wuhu = point(session, HEFEI), point(session, WUHU)
    stocked(session, wuhu, "TST-AG", 600, batch="W1")
    stocked(session, wuhu, "TST-AG", 500, batch="W2")
    stocked(session, hefei, "TST-AG", 50, batch="H1")
    keeper = staff(session, HEFEI, Duty.KEEPER)
    capacity.report(
        session, keeper, capacity.ReportIn("H1", "合肥演练医院", HEFEI, counts={"icu": (3, 9)})
    )
    session.commit()
    before = _real(session)

    d = drill.start(session, coordinator, title="2026 年冬季疫情联防演练", jurisdiction="340000")
    copied = {(c, i): (q, k) for c, i, q, k in drill.stock(session, d)}
    assert copied[(WUHU, "TST-AG")] == (1100, 1100) and copied[(HEFEI, "TST-AG")] == (50, 50)
    assert [h["hospital_code"] for h in d.capacity] == [f"{HEFEI}-H1"]

    r = drill.request(
        session,
        coordinator,
        d,
        requester_city=HEFEI,
        giver_city=WUHU,
        item_code="TST-AG",
        quantity=1000,
    )
    with pytest.raises(ValidationFailed) as refused:
        drill.commit(session, coordinator, r.id, 1001)
    assert refused.value.errors[0]["field"] == "quantity"
    drill.commit(session, coordinator, r.id, 800)
    with pytest.raises(Conflict):
        drill.commit(session, coordinator, r.id, 800)  # committed already
    drill.dispatch(session, coordinator, r.id)
    drill.receive(session, coordinator, r.id, 790)
    session.commit()
    now = {(c, i): q for c, i, q, _ in drill.stock(session, d)}
    assert now[(WUHU, "TST-AG")] == 300 and now[(HEFEI, "TST-AG")] == 50 + 790
    assert [s["step"] for s in r.steps] == ["requested", "committed", "dispatched", "received"]

    # A second request the giver cannot meet: declined.
    r2 = drill.request(
        session,
        coordinator,
        d,
        requester_city=HEFEI,
        giver_city=WUHU,
        item_code="TST-AG",
        quantity=5,
    )
    drill.commit(session, coordinator, r2.id, 0)
    assert r2.state == "declined"

    # The real stock: every unit, lot version and event count as before; nothing sent.
    assert _real(session) == before

    closed = drill.close(session, coordinator, d.id)
    assert closed.state == "closed" and closed.summary is not None
    assert closed.summary["asked"] == 1005 and closed.summary["dispatched"] == 800
    assert closed.summary["received"] == 790 and closed.summary["lost"] == 10
    with pytest.raises(Conflict):
        drill.request(
            session,
            coordinator,
            d,
            requester_city=HEFEI,
            giver_city=WUHU,
            item_code="TST-AG",
            quantity=1,
        )
    session.commit()
    assert _real(session) == before


def test_a_discarded_drill_deletes_its_copies_and_keeps_its_summary(session: Session) -> None:
    coordinator = staff(session, HEFEI, Duty.COORDINATOR)
    stocked(session, point(session, WUHU), "LIV-TENT", 40, batch="")
    before = _real(session)
    d = drill.start(session, coordinator, title="防汛演练", jurisdiction="340000")
    r = drill.request(
        session,
        coordinator,
        d,
        requester_city=HEFEI,
        giver_city=WUHU,
        item_code="LIV-TENT",
        quantity=10,
    )
    drill.commit(session, coordinator, r.id, 10)
    drill.dispatch(session, coordinator, r.id)
    drill.close(session, coordinator, d.id, discard=True)
    assert d.state == "discarded" and d.summary and d.summary["dispatched"] == 10
    left = session.scalar(
        select(func.count()).select_from(DrillLot).where(DrillLot.drill_id == d.id)
    )
    asked = session.scalar(
        select(func.count()).select_from(DrillRequest).where(DrillRequest.drill_id == d.id)
    )
    assert left == 0 and asked == 0
    assert _real(session) == before


def test_only_the_jurisdictions_coordinators_run_a_drill(session: Session) -> None:
    keeper = staff(session, HEFEI, Duty.KEEPER)
    with pytest.raises(PermissionDenied):
        drill.start(session, keeper, title="演练", jurisdiction="340000")
    nanjing = staff(session, NANJING, Duty.COORDINATOR)
    with pytest.raises(PermissionDenied):
        drill.start(session, nanjing, title="演练", jurisdiction="340000")
    with pytest.raises(ValidationFailed) as refused:
        drill.start(session, nanjing, title=" ", jurisdiction="999999")
    assert {e["field"] for e in refused.value.errors} == {"title", "jurisdiction"}
    with pytest.raises(PermissionDenied):
        drill.list_drills(session, make_resident(session))


def test_the_api_and_pages_run_a_drill_marked_as_such(client: TestClient, session: Session) -> None:
    coordinator = staff(session, HEFEI, Duty.COORDINATOR)
    stocked(session, point(session, WUHU), "TST-AG", 300, batch="A1")
    session.commit()
    before = _real(session)
    h = token_for(client, coordinator)
    r = client.post(
        "/api/v1/emergency/drills", headers=h, json={"title": "接口演练", "jurisdiction": "340000"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["drill"] is True and body["state"] == "open"
    did = body["id"]
    r = client.post(
        f"/api/v1/emergency/drills/{did}/requests",
        headers=h,
        json={"requester_city": HEFEI, "giver_city": WUHU, "item_code": "TST-AG", "quantity": 100},
    )
    assert r.status_code == 201
    rid = r.json()["id"]
    r = client.post(
        f"/api/v1/emergency/drills/requests/{rid}/commit", headers=h, json={"quantity": 400}
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == "quantity"
    assert (
        client.post(
            f"/api/v1/emergency/drills/requests/{rid}/commit", headers=h, json={"quantity": 100}
        ).status_code
        == 200
    )
    r = client.post(
        f"/api/v1/emergency/drills/requests/{rid}/receive", headers=h, json={"quantity": 1}
    )
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert (
        client.post(f"/api/v1/emergency/drills/requests/{rid}/dispatch", headers=h).status_code
        == 200
    )

    sign_in(client, coordinator)
    page = client.get(f"/emergency/drills/{did}")
    assert page.status_code == 200
    assert "演练模式" in page.text and "接口演练" in page.text and "已发运" in page.text
    listing = client.get("/emergency/drills")
    assert "接口演练" in listing.text and "演练" in listing.text
    r = client.post(f"/api/v1/emergency/drills/{did}/close", headers=h)
    assert r.status_code == 200 and r.json()["summary"]["dispatched"] == 100
    assert "演练小结" in client.get(f"/emergency/drills/{did}").text
    session.expire_all()
    assert _real(session) == before
