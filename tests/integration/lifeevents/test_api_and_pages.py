"""The API and pages of life-event bundles over the real app (SQLite and PostgreSQL): the
definitions, one submission through the API and through the merged form, the follow page,
and every refusal as a 4xx problem+json naming the field (never a 500)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from integration.lifeevents.kit import mother

from builders import TINY_PDF, csrf_of, make_officer, make_resident, sign_in, token_for

PROBLEM = "application/problem+json"


def _mother(session: Session) -> Any:
    m = mother(session)
    session.commit()
    return m


def _form(**over: Any) -> dict[str, Any]:
    form = {
        "child_name": "张小宝",
        "child_sex": "女",
        "birth_date": "2026-11-20",
        "birth_hospital": "上海市第一妇婴保健院",
        "birth_city": "310000",
        "mother_name": "王芳",
        "mother_id_number": "340102199003071283",
        "mother_hukou_city": "340100",
        "father_name": "张伟",
        "father_hukou_city": "320100",
        "hukou_follows": "随母亲落户",
        "declarant_relation": "母亲",
        "hukou_address": "安徽省合肥市蜀山区长江西路100号",
        "residence_city": "310000",
        "residence_address": "上海市浦东新区世纪大道100号",
        "ssc_bank": "中国银行",
        "ssc_pickup": "网点领取",
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def _photo(client: TestClient, auth: dict[str, str]) -> str:
    r = client.post(
        "/api/v1/attachments",
        data={"material_code": "photo"},
        files={"file": ("photo.pdf", TINY_PDF, "application/pdf")},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_the_definitions_are_published(client: TestClient) -> None:
    r = client.get("/api/v1/lifeevents/bundles")
    assert r.status_code == 200
    bundles = {b["code"]: b for b in r.json()}
    assert list(bundles) == ["newborn", "business", "retirement", "hukou_migration"]
    newborn = bundles["newborn"]
    assert [s["title"] for s in newborn["steps"]] == [
        "出生医学证明",
        "出生登记（落户）",
        "医保参保登记",
        "社会保障卡申领",
        "预防接种建档",
    ]
    assert newborn["steps"][1]["after"] == ["birth_certificate"]
    assert newborn["steps"][1]["materials_from"] == {"birth_certificate": "birth_certificate"}
    assert newborn["form"]["properties"]["birth_city"]["x-city"] is True
    hukou = next(p for p in newborn["places"] if p["key"] == "hukou")
    assert hukou["cities"]["随父亲落户"] == "father_hukou_city"
    assert client.get("/api/v1/lifeevents/bundles/nope").status_code == 404


def test_submit_and_follow_through_the_api(client: TestClient, session: Session) -> None:
    m = _mother(session)
    auth = token_for(client, m)
    body = {
        "bundle": "newborn",
        "form_data": _form(),
        "attachment_ids": [_photo(client, auth)],
        "consent": True,
    }
    r = client.post("/api/v1/lifeevents", json=body, headers=auth)
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["state"] == "in_progress" and b["state_label"] == "办理中"
    steps = {s["key"]: s for s in b["steps"]}
    assert steps["birth_certificate"]["state"] == "started"
    assert steps["birth_certificate"]["case"]["authority_name"] == "上海市卫生健康委员会"
    assert steps["birth_certificate"]["case"]["state_label"] == "已提交，待受理"
    assert steps["hukou"]["state"] == "waiting" and steps["hukou"]["waits_on"] == ["出生医学证明"]
    assert [e["action"] for e in b["events"]][:2] == ["submit", "step_started"]

    assert client.get(f"/api/v1/lifeevents/{b['id']}", headers=auth).json()["number"] == b["number"]
    assert [x["id"] for x in client.get("/api/v1/lifeevents", headers=auth).json()] == [b["id"]]
    # Somebody else's bundle does not exist for them.
    other = make_resident(session, "340100")
    session.commit()
    r = client.get(f"/api/v1/lifeevents/{b['id']}", headers=token_for(client, other))
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)


def test_api_refusals_are_problems_naming_the_field(client: TestClient, session: Session) -> None:
    m = _mother(session)
    auth = token_for(client, m)
    r = client.post(
        "/api/v1/lifeevents",
        json={
            "bundle": "newborn",
            "form_data": _form(birth_city="999999", child_sex="不详"),
            "consent": True,
        },
        headers=auth,
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"form_data.child_sex", "form_data.birth_city", "materials.photo"} <= fields
    r = client.post("/api/v1/lifeevents", json={"bundle": "nope", "consent": True}, headers=auth)
    assert r.status_code == 404 and r.json()["type"].endswith("unknown-bundle")
    r = client.post(
        "/api/v1/lifeevents",
        json={
            "bundle": "newborn",
            "form_data": _form(),
            "attachment_ids": ["00000000-0000-0000-0000-000000000000"],
            "consent": True,
        },
        headers=auth,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "attachment_ids"
    r = client.post("/api/v1/lifeevents", json={"bundle": "newborn", "form_data": []}, headers=auth)
    assert r.status_code == 422
    officer = make_officer(session, "310000-health")
    session.commit()
    r = client.post(
        "/api/v1/lifeevents",
        json={"bundle": "newborn", "form_data": _form(), "consent": True},
        headers=token_for(client, officer),
    )
    assert r.status_code == 403
    assert client.get("/api/v1/lifeevents").status_code == 401
    assert client.get("/api/v1/lifeevents/not-a-uuid", headers=auth).status_code == 422


def test_the_merged_form_page_submits_once_and_the_follow_page_shows_the_steps(
    client: TestClient, session: Session
) -> None:
    m = _mother(session)
    assert "新生儿出生“一件事”" in client.get("/lifeevents").text
    sign_in(client, m)
    page = client.get("/lifeevents/newborn/apply")
    assert page.status_code == 200
    html = page.text
    assert 'name="birth_city"' in html and '<optgroup label="上海市">' in html
    assert 'name="material_photo"' in html  # the one file the bundle needs
    assert "使用我的电子证照（免提交）" in html  # the mother's 居民身份证
    assert "由“出生医学证明”的结果自动关联（免提交）" in html
    csrf = csrf_of(html)

    r = client.post(
        "/lifeevents/newborn/apply",
        data={"csrf_token": csrf, **_form(child_name=None), "consent": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert "“新生儿姓名”为必填项" in r.text and "请上传近期免冠证件照片" in r.text
    assert 'value="张小宝"' not in r.text and 'value="上海市第一妇婴保健院"' in r.text

    r = client.post(
        "/lifeevents/newborn/apply",
        data={"csrf_token": csrf, **_form(), "consent": "1"},
        files={"material_photo": ("photo.pdf", TINY_PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    follow = client.get(r.headers["location"])
    assert follow.status_code == 200
    text = follow.text
    assert re.search(r"YJS340100\d{14}", text)
    assert "上海市卫生健康委员会" in text and "出生医学证明" in text
    assert "等待" in text and "出生医学证明办结后自动提交" in text
    assert "我的“一件事”" in client.get("/lifeevents").text
    # Another resident's page is not found.
    other = make_resident(session, "340100")
    session.commit()
    sign_in(client, other)
    assert client.get(r.headers["location"]).status_code == 404
