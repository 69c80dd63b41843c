"""免申即享 over the real app (SQLite and PostgreSQL): the resident's offers and one-action
acceptance (API and page), the officer's review decision (a missing reason is a 422
naming the field), a rule's draft, preview and activation pages; refusals are 4xx
problem+json, never a 500."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from stdnum.cn import ric

from tongban.benefits import service
from tongban.benefits.domain import TriggerKind

from builders import csrf_of, make_officer, make_resident, sign_in, token_for

PROBLEM = "application/problem+json"


def female_id(birth: str) -> str:
    body = "320102" + birth + "024"
    return body + ric.calc_check_digit(body + "0")


def _mother_with_offer(session: Session) -> Any:
    m = make_resident(session, "320100", display_name="陈静", id_number=female_id("19920304"))
    service.record_facts(
        session,
        m.id_number,
        "陈静",
        {"insured_status": "正常参保", "months_paid": 20, "latest_birth_date": service.today()},
        "社会保险缴费记录（南京市社保中心）",
    )
    service.evaluate_person(session, m.id_number, service.Trigger(TriggerKind.BIRTH, "case:t1"))
    session.commit()
    return m


def test_resident_sees_the_trace_and_accepts_by_api(client: TestClient, session: Session):
    m = _mother_with_offer(session)
    auth = token_for(client, m)
    r = client.get("/api/v1/me/benefits", headers=auth)
    assert r.status_code == 200, r.text
    [offer] = r.json()
    assert offer["name"] == "生育津贴" and offer["state"] == "offered"
    assert offer["trace"]["version"] == 1 and len(offer["trace"]["conditions"]) == 4
    r = client.post(f"/api/v1/me/benefits/{offer['id']}/accept", headers=auth)
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    assert [e["action"] for e in r.json()["events"]] == ["offer", "accept"]
    r = client.post(f"/api/v1/me/benefits/{offer['id']}/accept", headers=auth)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    other = make_resident(session)
    session.commit()
    r = client.post(f"/api/v1/me/benefits/{offer['id']}/accept", headers=token_for(client, other))
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    unproven = make_resident(session, assurance_level="self_declared")
    session.commit()
    r = client.get("/api/v1/me/benefits", headers=token_for(client, unproven))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM


def test_resident_page_accepts_with_one_button(client: TestClient, session: Session):
    m = _mother_with_offer(session)
    sign_in(client, m)
    page = client.get("/my/benefits")
    assert page.status_code == 200
    assert "生育津贴" in page.text and "连续缴费满12个月" in page.text
    assert "社会保险缴费记录（南京市社保中心）" in page.text
    assert 'href="/my/benefits"' in page.text  # in the navigation
    action = re.search(r'action="(/my/benefits/[^"]+/accept)"', page.text)
    assert action
    r = client.post(action.group(1), data={"csrf_token": csrf_of(page.text)}, follow_redirects=True)
    assert r.status_code == 200 and "已确认领取" in r.text
    assert "确认领取</button>" not in r.text
    assert client.post(action.group(1), data={}).status_code == 403  # no CSRF token


def test_officer_reviews_and_rule_pages(client: TestClient, session: Session):
    today = service.today()
    old = "320102" + date(today.year - 90, 1, 1).strftime("%Y%m%d") + "031"
    old += ric.calc_check_digit(old + "0")
    service.record_facts(session, old, "周老伯", {"household_jurisdiction": "320000"}, "户籍登记")
    service.evaluate_person(session, old, service.Trigger(TriggerKind.BIRTHDAY, "b"))
    service.record_facts(session, old, "周老伯", {"household_jurisdiction": "110000"}, "户口迁出")
    service.evaluate_person(session, old, service.Trigger(TriggerKind.MOVE, "m"))
    officer = make_officer(session, "320100-civil_affairs")
    resident = make_resident(session)
    session.commit()
    auth = token_for(client, officer)
    resident_auth = token_for(client, resident)
    [review] = client.get("/api/v1/benefits/reviews", headers=auth).json()
    assert review["name"] == "高龄津贴" and review["offer_state"] == "granted"
    r = client.post(
        f"/api/v1/benefits/reviews/{review['id']}/decide",
        json={"decision": "stop", "reason": ""},
        headers=auth,
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == "reason"

    sign_in(client, officer)
    page = client.get("/officer/benefits")
    assert page.status_code == 200 and "周老伯" in page.text and "户口迁出" in page.text
    r = client.post(
        f"/officer/benefits/reviews/{review['id']}/decide",
        data={"csrf_token": csrf_of(page.text), "decision": "keep", "reason": ""},
    )
    assert r.status_code == 422 and "请说明理由" in r.text
    r = client.post(
        f"/officer/benefits/reviews/{review['id']}/decide",
        data={"csrf_token": csrf_of(page.text), "decision": "keep", "reason": "迁出地仍由本地发放"},
        follow_redirects=True,
    )
    assert r.status_code == 200 and "已决定继续发放" in r.text

    rules = client.get("/officer/benefits/rules")
    assert rules.status_code == 200 and "老年人公交优待" in rules.text
    csrf = csrf_of(rules.text)
    r = client.post(
        "/officer/benefits/rules/senior_transit/draft", data={"csrf_token": csrf, "c0": "七十"}
    )
    assert r.status_code == 422 and "请填写整数" in r.text
    r = client.post(
        "/officer/benefits/rules/senior_transit/draft",
        data={"csrf_token": csrf, "c0": "95"},
        follow_redirects=True,
    )
    assert r.status_code == 200 and "第2版预览" in r.text
    assert re.search(r'id="count-lose">1<', r.text)  # 周老伯 (90) would lose it
    r = client.post(
        "/officer/benefits/rules/senior_transit/v/2/activate",
        data={"csrf_token": csrf_of(r.text)},
        follow_redirects=True,
    )
    assert r.status_code == 200 and "新版本已启用" in r.text
    client.cookies.clear()
    reviews = client.get("/api/v1/benefits/reviews", headers=auth).json()
    assert [x["name"] for x in reviews] == ["老年人公交优待"]

    client.cookies.clear()
    r = client.get("/api/v1/benefits/reviews", headers=resident_auth)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = client.post(
        "/api/v1/benefits/rules/nope/versions", json={"values": {"0": "1"}}, headers=auth
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
