"""Reserves over HTTP: the JSON API (movements, uploads with an error per row as
problem+json, the reserve table, quotas, duties) and the pages in Chinese (the table
with its filters, a city's batches with the keeper's form, the upload page listing
every bad row), each refusing who may not."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from integration.emergency.kit import point, staff, stocked
from tongban.emergency.domain import Duty

from builders import csrf_of, make_admin, make_resident, sign_in, token_for

HEFEI = "340100"
PROBLEM = "application/problem+json"


def test_the_api_moves_uploads_and_tables_stock(client: TestClient, session: Session) -> None:
    keeper = staff(session, HEFEI)
    store = point(session, HEFEI)
    session.commit()
    h = token_for(client, keeper)
    r = client.post(
        "/api/v1/emergency/movements",
        headers=h,
        json={
            "point_code": store.code,
            "item_code": "TST-AG",
            "batch": "AG01",
            "expiry": "2030-01-31",
            "movement": "receive",
            "amount": 800,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["after"] == 800 and r.json()["lot"]["freshness"] == "ok"
    lot_id = r.json()["lot"]["id"]
    r = client.post(
        "/api/v1/emergency/movements",
        headers=h,
        json={
            "point_code": store.code,
            "item_code": "TST-AG",
            "batch": "AG01",
            "movement": "issue",
            "amount": 900,
            "reason": "x",
        },
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == "amount"

    csv = (
        f"储备点编码,物资编码,批号,有效期,数量\n{store.code},LIV-TENT,,,40\n{store.code},NOPE,,,1\n"
    )
    r = client.post(
        "/api/v1/emergency/uploads",
        headers=h,
        files={"file": ("s.csv", csv.encode(), "text/csv")},
        data={"mode": "receive"},
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == ["rows.3.item_code"]
    good = csv.rsplit("\n", 2)[0] + "\n"
    r = client.post(
        "/api/v1/emergency/uploads",
        headers=h,
        files={"file": ("s.csv", good.encode(), "text/csv")},
        data={"mode": "receive"},
    )
    assert r.status_code == 201 and r.json() == {"rows": 1, "lots_created": 1, "delta": 40}

    r = client.get("/api/v1/emergency/stock", headers=h, params={"city": HEFEI, "item": "TST-AG"})
    assert r.status_code == 200
    (row,) = r.json()
    assert row["quantity"] >= 800 and row["shared"] is False and row["minimum"] == 50000
    r = client.put(f"/api/v1/emergency/quotas/{HEFEI}/TST-AG", headers=h, json={"minimum": 500})
    assert r.status_code == 200
    r = client.get("/api/v1/emergency/stock", headers=h, params={"city": HEFEI, "low": True})
    assert "TST-AG" not in {x["item_code"] for x in r.json()}
    r = client.get(f"/api/v1/emergency/lots/{lot_id}", headers=h)
    assert [e["action"] for e in r.json()["events"]] == ["receive"]
    assert client.get("/api/v1/emergency/uploads/template.csv").status_code == 200
    assert len(client.get("/api/v1/emergency/items").json()) >= 20


def test_who_may_not_is_refused(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    other_keeper = staff(session, "340200")
    store = point(session, HEFEI)
    admin = make_admin(session)
    officer = staff(session, HEFEI, Duty.COORDINATOR)
    session.commit()
    r = client.get("/api/v1/emergency/stock", headers=token_for(client, resident))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    body = {
        "point_code": store.code,
        "item_code": "LIV-TENT",
        "movement": "receive",
        "amount": 1,
    }
    r = client.post(
        "/api/v1/emergency/movements", headers=token_for(client, other_keeper), json=body
    )
    assert r.status_code == 403 and "合肥" in r.json()["detail"]
    grant = {"username": officer.username, "duty": "keeper", "city_code": HEFEI}
    r = client.post("/api/v1/emergency/duties", headers=token_for(client, officer), json=grant)
    assert r.status_code == 403
    r = client.post("/api/v1/emergency/duties", headers=token_for(client, admin), json=grant)
    assert r.status_code == 201
    r = client.post("/api/v1/emergency/movements", headers=token_for(client, officer), json=body)
    assert r.status_code == 201


def test_the_pages_show_the_reserves_and_every_bad_upload_row(
    client: TestClient, session: Session
) -> None:
    keeper = staff(session, HEFEI)
    store = point(session, HEFEI, name="合肥测试储备库")
    stocked(session, store, "TST-AG", 1200, batch="AG7")
    session.commit()
    sign_in(client, keeper)
    page = client.get("/emergency/reserves", params={"city": HEFEI, "item": "TST-AG"})
    assert page.status_code == 200
    assert "应急物资储备一览" in page.text and "抗原检测试剂盒" in page.text and "合肥" in page.text
    assert "低于定额" in page.text
    lots = client.get("/emergency/reserves/lots", params={"point": store.code})
    assert lots.status_code == 200 and "AG7" in lots.text and "登记库存变动" in lots.text

    r = client.post(
        "/emergency/reserves/move",
        data={
            "csrf_token": csrf_of(lots.text),
            "point_code": store.code,
            "item_code": "TST-AG",
            "batch": "AG7",
            "movement": "issue",
            "amount": "5000",
            "reason": "发放",
        },
    )
    assert r.status_code == 422 and "库存不足" in r.text

    up = client.get("/emergency/reserves/upload")
    csv = f"储备点编码,物资编码,批号,有效期,数量\n{store.code},TST-AG,AG8,,10\n340100-NONE,LIV-TENT,,,1\n"
    r = client.post(
        "/emergency/reserves/upload",
        data={"csrf_token": csrf_of(up.text), "mode": "receive"},
        files={"file": ("s.csv", csv.encode(), "text/csv")},
    )
    assert r.status_code == 422
    assert (
        "第 2 行有效期" in r.text and "第 3 行储备点编码" in r.text and "未导入任何数据" in r.text
    )
    home = client.get("/emergency")
    assert home.status_code == 200 and "应急物资协同保障" in home.text


def test_a_resident_cannot_open_the_pages(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    session.commit()
    sign_in(client, resident)
    assert client.get("/emergency/reserves").status_code == 403
