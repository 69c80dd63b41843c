"""Mutual aid over HTTP on one node: the pages in Chinese (the request form, the
request's page with the answer, dispatch and receipt forms, a refused form shown again
with its message) and the JSON API (the same steps; a second receipt is a 409
problem+json)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from integration.emergency.kit import point, staff, stocked
from tongban.emergency.domain import Duty

from builders import csrf_of, sign_in, token_for

HEFEI, SHANGHAI = "340100", "310000"
PROBLEM = "application/problem+json"


def _setup(session: Session) -> dict[str, Any]:
    s = {
        "hefei": staff(session, HEFEI),
        "shanghai": staff(session, SHANGHAI),
        "zhejiang": staff(session, "330100", Duty.COORDINATOR),
        "dest": point(session, HEFEI, name="合肥市测试接收库"),
        "src": point(session, SHANGHAI, name="上海市测试储备库"),
    }
    stocked(session, s["src"], "TST-AG", 5000, batch="SH1")
    session.commit()
    return s


def test_the_whole_loop_through_the_pages(client: TestClient, session: Session) -> None:
    s = _setup(session)
    sign_in(client, s["hefei"])
    form = client.get("/emergency/aid/new")
    assert (
        form.status_code == 200 and "发起互助请求" in form.text and "合肥市测试接收库" in form.text
    )
    r = client.post(
        "/emergency/aid/new",
        data={
            "csrf_token": csrf_of(form.text),
            "city_code": HEFEI,
            "destination_code": s["dest"].code,
            "title": "聚集性疫情筛查",
            "urgency": "immediate",
            "targets": ["310000", "330000"],
            "item_0": "TST-AG",
            "quantity_0": "3000",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page_url = r.headers["location"].split("?")[0]
    page = client.get(r.headers["location"])
    assert "互助请求已发出" in page.text and "特急" in page.text and "尚未答复" in page.text
    assert client.get("/emergency/aid").text.count(page_url) >= 1

    sign_in(client, s["shanghai"])
    page = client.get(page_url)
    assert "承诺支援（上海市）" in page.text
    r = client.post(
        f"{page_url}/commit",
        data={"csrf_token": csrf_of(page.text), "commit_TST-AG": "3000"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(page_url)
    assert "确认发运" in page.text
    action = re.search(r'action="(/emergency/aid/commitments/[^/]+/dispatch)"', page.text)
    assert action is not None
    r = client.post(
        action.group(1),
        data={
            "csrf_token": csrf_of(page.text),
            "point_code": s["src"].code,
            "qty_TST-AG": "3001",
            "per_box_TST-AG": "1000",
            "vehicle": "沪A·12345",
        },
    )
    assert r.status_code == 422 and "超出承诺未发运数量 3000" in r.text
    r = client.post(
        action.group(1),
        data={
            "csrf_token": csrf_of(page.text),
            "point_code": s["src"].code,
            "qty_TST-AG": "3000",
            "per_box_TST-AG": "1000",
            "vehicle": "沪A·12345",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303

    sign_in(client, s["hefei"])
    page = client.get(page_url)
    assert "确认签收入库" in page.text and "运输中" in page.text
    receive = re.search(r'action="(/emergency/aid/shipments/[^/]+/receive)"', page.text)
    boxes = re.findall(r'name="(count_FY[0-9-]+)" inputmode="numeric" value="(\d+)"', page.text)
    assert receive is not None and len(boxes) == 3
    data = {"csrf_token": csrf_of(page.text), **dict(boxes)}
    r = client.post(receive.group(1), data={**data, boxes[0][0]: "999"})
    assert r.status_code == 422 and "请说明情况" in r.text
    r = client.post(receive.group(1), data=data, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(page_url)
    assert "已签收" in page.text and "签收 3000" in page.text
    lots = client.get("/emergency/reserves/lots", params={"point": s["dest"].code})
    assert "SH1" in lots.text


def test_the_api_takes_the_same_steps_and_a_second_receipt_is_a_409(
    client: TestClient, session: Session
) -> None:
    s = _setup(session)
    hefei, shanghai = token_for(client, s["hefei"]), token_for(client, s["shanghai"])
    r = client.post(
        "/api/v1/emergency/requests",
        headers=hefei,
        json={
            "city_code": HEFEI,
            "destination_code": s["dest"].code,
            "urgency": "urgent",
            "title": "方舱医院建设",
            "lines": [{"item_code": "TST-AG", "quantity": 1000}],
            "targets": ["310000"],
        },
    )
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["state"] == "open" and [e["action"] for e in req["events"]] == ["submit"]
    r = client.post(
        f"/api/v1/emergency/requests/{req['id']}/commitments",
        headers=shanghai,
        json={"lines": [{"item_code": "TST-AG", "quantity": 1000}]},
    )
    assert r.status_code == 201, r.text
    c = r.json()
    r = client.post(
        f"/api/v1/emergency/commitments/{c['id']}/shipments",
        headers=shanghai,
        json={
            "point_code": s["src"].code,
            "vehicle": "沪B·1",
            "lines": [{"item_code": "TST-AG", "quantity": 1000, "per_box": 400}],
        },
    )
    assert r.status_code == 201, r.text
    sh = r.json()
    assert [b["quantity"] for b in sh["boxes"]] == [400, 400, 200]
    counts = {b["code"]: b["quantity"] for b in sh["boxes"]}
    r = client.post(
        f"/api/v1/emergency/shipments/{sh['id']}/receipt", headers=shanghai, json={"counts": counts}
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = client.post(
        f"/api/v1/emergency/shipments/{sh['id']}/receipt", headers=hefei, json={"counts": counts}
    )
    assert r.status_code == 200 and r.json()["state"] == "received"
    r = client.post(
        f"/api/v1/emergency/shipments/{sh['id']}/receipt", headers=hefei, json={"counts": counts}
    )
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("illegal-transition")
    r = client.get(f"/api/v1/emergency/requests/{req['id']}", headers=hefei)
    body = r.json()
    assert body["state"] == "closed" and body["received"] == [
        {"item_code": "TST-AG", "quantity": 1000}
    ]
    assert [x["state"] for x in body["commitments"]] == ["fulfilled"]
    listed = client.get("/api/v1/emergency/requests", headers=hefei, params={"state": "closed"})
    assert req["id"] in {x["id"] for x in listed.json()}
