"""The card API and pages over the real app (SQLite and PostgreSQL): the holder's cards,
挂失 / 补换 from the API and from 我的社保卡, a window clerk's search and actions for a
walk-in, and every refusal as problem+json with its field (never a 500)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tongban.card import service
from tongban.card.models import Card

from builders import csrf_of, make_clerk, make_resident, sign_in, token_for

PROBLEM = "application/problem+json"


def _holder_with_card(session: Session, city: str = "320100") -> tuple[Any, Card]:
    holder = make_resident(session, city)
    card = service.issue(session, service.holder_of(holder))
    session.commit()
    return holder, card


def test_the_holder_sees_and_acts_on_their_card_through_the_api(
    client: TestClient, session: Session
) -> None:
    holder, card = _holder_with_card(session)
    auth = token_for(client, holder)
    mine = client.get("/api/v1/me/cards", headers=auth).json()
    assert [c["number"] for c in mine] == [card.number]
    assert mine[0]["state"] == "normal" and mine[0]["state_label"] == "正常"
    assert mine[0]["allowed_actions"] == ["report_lost", "replace"]
    assert "*" in mine[0]["holder_id_number"]  # masked

    r = client.post(
        f"/api/v1/me/cards/{card.id}/actions",
        json={"action": "report_lost", "reason": "遗失"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["card"]["state"] == "lost" and r.json()["replacement"] is None

    r = client.post(f"/api/v1/me/cards/{card.id}/actions", json={"action": "replace"}, headers=auth)
    body = r.json()
    assert body["card"]["state"] == "replaced"
    assert body["replacement"]["state"] == "normal"
    assert body["replacement"]["replaces"] == card.number
    assert [e["action"] for e in body["card"]["events"]] == ["issue", "report_lost", "replace"]

    # A final card refuses: 409 illegal-transition, in Chinese.
    r = client.post(f"/api/v1/me/cards/{card.id}/actions", json={"action": "found"}, headers=auth)
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith("illegal-transition") and "补换" in r.json()["detail"]


def test_api_refusals_are_4xx_problems(client: TestClient, session: Session) -> None:
    holder, card = _holder_with_card(session)
    other = make_resident(session, "320100")
    session.commit()
    auth, other_auth = token_for(client, holder), token_for(client, other)
    url = f"/api/v1/me/cards/{card.id}/actions"
    unknown = client.post(url, json={"action": "explode"}, headers=auth)
    assert unknown.status_code == 422 and unknown.headers["content-type"].startswith(PROBLEM)
    cancel = client.post(url, json={"action": "cancel", "reason": "x"}, headers=auth)
    assert cancel.status_code == 409 and "须由有权限的人员执行" in cancel.json()["detail"]
    theirs = client.post(url, json={"action": "report_lost"}, headers=other_auth)
    assert theirs.status_code == 404 and theirs.json()["type"].endswith("unknown-card")
    assert client.get(f"/api/v1/me/cards/{card.id}", headers=other_auth).status_code == 404
    assert client.get("/api/v1/me/cards").status_code == 401
    long = client.post(url, json={"action": "report_lost", "reason": "丢" * 501}, headers=auth)
    assert long.status_code == 422
    assert client.get(f"/api/v1/me/cards/{card.id}", headers=auth).json()["state"] == "normal"


def test_a_clerk_finds_a_walk_in_and_cancels_with_a_reason_over_the_api(
    client: TestClient, session: Session
) -> None:
    holder, card = _holder_with_card(session, "320100")
    clerk = make_clerk(session, "320100")
    session.commit()
    auth = token_for(client, clerk)
    found = client.post(
        "/api/v1/cards/search", json={"id_number": holder.id_number}, headers=auth
    ).json()
    assert [c["id"] for c in found] == [str(card.id)]
    assert found[0]["allowed_actions"] == ["report_lost", "replace", "cancel"]
    url = f"/api/v1/cards/{card.id}/actions"
    missing = client.post(url, json={"action": "cancel"}, headers=auth)
    assert missing.status_code == 422
    assert missing.json()["errors"] == [{"field": "reason", "message": "请填写理由"}]
    done = client.post(url, json={"action": "cancel", "reason": "户籍迁出"}, headers=auth)
    assert done.status_code == 200 and done.json()["card"]["state"] == "cancelled"
    assert done.json()["card"]["events"][-1]["actor_role"] == "clerk"
    bad = client.post(
        "/api/v1/cards/search", json={"id_number": "320102199001011234"}, headers=auth
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "id_number"
    # A resident may not search.
    r = client.post(
        "/api/v1/cards/search",
        json={"id_number": holder.id_number},
        headers=token_for(client, holder),
    )
    assert r.status_code == 403


def test_my_card_page_reports_lost_and_replaces(client: TestClient, session: Session) -> None:
    holder, card = _holder_with_card(session)
    sign_in(client, holder)
    page = client.get("/my/card")
    assert page.status_code == 200
    assert card.number in page.text and "我的社保卡" in page.text
    assert 'data-card-action="report_lost"' in page.text
    assert 'data-card-action="cancel"' not in page.text
    assert 'href="/my/card/code"' in page.text
    r = client.post(
        f"/my/card/{card.id}/act",
        data={"csrf_token": csrf_of(page.text), "action": "report_lost", "reason": "丢了"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/my/card?done=report_lost"
    page = client.get(r.headers["location"])
    assert "已挂失" in page.text and 'data-card-status="lost"' in page.text
    assert 'href="/my/card/code"' not in page.text
    assert 'data-card-action="found"' in page.text
    r = client.post(
        f"/my/card/{card.id}/act",
        data={"csrf_token": csrf_of(page.text), "action": "replace"},
        follow_redirects=False,
    )
    page = client.get(r.headers["location"])
    session.expire_all()
    new = service.current_card(session, holder)
    assert new is not None and new.id != card.id
    assert new.number in page.text and "已补换" in page.text
    assert card.number in page.text  # in 全部卡片


def test_a_refused_page_action_says_why_and_writes_nothing(
    client: TestClient, session: Session
) -> None:
    holder, card = _holder_with_card(session)
    sign_in(client, holder)
    page = client.get("/my/card")
    r = client.post(
        f"/my/card/{card.id}/act",
        data={"csrf_token": csrf_of(page.text), "action": "cancel", "reason": "不要了"},
    )
    assert r.status_code == 409 and "须由有权限的人员执行" in r.text
    r = client.post(
        f"/my/card/{card.id}/act", data={"csrf_token": "wrong", "action": "report_lost"}
    )
    assert r.status_code == 403
    session.expire_all()
    assert session.get(Card, card.id).state == "normal"  # type: ignore[union-attr]


def test_the_window_card_service(client: TestClient, session: Session) -> None:
    holder, card = _holder_with_card(session, "320100")
    clerk = make_clerk(session, "320100")
    session.commit()
    sign_in(client, clerk)
    page = client.get("/window/cards")
    assert page.status_code == 200 and "社保卡窗口服务" in page.text
    bad = client.post("/window/cards", data={"csrf_token": csrf_of(page.text), "id_number": "123"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    found = client.post(
        "/window/cards",
        data={"csrf_token": csrf_of(page.text), "id_number": holder.id_number},
    )
    assert f'href="/window/cards/{card.id}"' in found.text
    detail = client.get(f"/window/cards/{card.id}")
    assert 'data-card-action="cancel"' in detail.text and holder.id_number not in detail.text
    refused = client.post(
        f"/window/cards/{card.id}/act",
        data={"csrf_token": csrf_of(detail.text), "action": "cancel", "reason": ""},
    )
    assert refused.status_code == 422 and "“注销”须说明理由" in refused.text
    r = client.post(
        f"/window/cards/{card.id}/act",
        data={"csrf_token": csrf_of(detail.text), "action": "replace", "reason": "卡片损坏"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    done = client.get(r.headers["location"])
    assert "已补换" in done.text and "新卡卡号" in done.text
    # A resident cannot open the window pages.
    client.post("/logout", data={"csrf_token": csrf_of(done.text)})
    sign_in(client, holder)
    assert client.get("/window/cards").status_code == 403
