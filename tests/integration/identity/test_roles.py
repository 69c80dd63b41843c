"""Staff roles (issue 11): an administrator changes a staff account's role and post through
the service, the API (PUT /api/v1/accounts/{id}/role) and the page (/admin/accounts/{id});
each change is an account event in the audit chain with from, to, who and why, and the
account's sessions and tokens end, so that a demoted officer keeps no powers."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.audit import service as audit
from tongban.audit.domain import field_digest
from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.identity import service as identity
from tongban.identity.models import Account, AccountEvent, ApiToken, WebSession
from tongban.regions import service as regions

from builders import (
    csrf_of,
    make_admin,
    make_clerk,
    make_officer,
    make_resident,
    make_supervisor,
    sign_in,
    token_for,
)

PROBLEM = "application/problem+json"


def _role_entries(session: Session, account: Account) -> list[dict[str, Any]]:
    """The chain's account.event entries of `account` that record a change of role, each
    with its actor, alg and body."""
    out = []
    for e in audit.about(session, f"account:{account.id}"):
        body = json.loads(e.body)
        if e.kind == "account.event" and body["action"] == "role_changed":
            out.append({"actor": e.actor, "alg": e.alg, "body": body})
    return out


def _field(response: Any) -> set[str]:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return {e["field"] for e in response.json().get("errors", [])}


# --- the service ----------------------------------------------------------------------------


def test_a_role_change_is_in_the_chain_with_from_to_who_and_why(session: Session) -> None:
    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund", duty="approver")
    identity.change_role(
        session, admin, officer.id, "clerk", reason="调岗至窗口", city_code="310000"
    )

    assert officer.role == "clerk" and officer.duty is None and officer.authority_id is None
    # The post follows the city: its jurisdiction too (上海).
    assert officer.city_code == "310000" and officer.jurisdiction_code == "310000"
    event = session.scalars(
        select(AccountEvent).where(
            AccountEvent.account_id == officer.id, AccountEvent.action == "role_changed"
        )
    ).one()
    assert event.reason == "调岗至窗口" and event.actor_id == admin.id
    assert event.evidence["from"]["role"] == "officer"
    assert event.evidence["from"]["duty"] == "approver"
    assert event.evidence["from"]["city_code"] == "320500"
    assert event.evidence["to"] == {
        "role": "clerk",
        "duty": None,
        "authority_id": None,
        "city_code": "310000",
        "jurisdiction_code": "310000",
    }

    [entry] = _role_entries(session, officer)
    assert entry["actor"] == f"account:{admin.id}"
    assert entry["body"]["evidence"]["from"]["role"] == "officer"
    assert entry["body"]["evidence"]["to"]["role"] == "clerk"
    # The reason is pinned by its digest (the text stays in the event row).
    assert entry["body"]["reason_digest"] == field_digest(entry["alg"], "调岗至窗口")
    assert identity.role_events(session, officer) == [event]
    assert audit.verify(session).ok


def test_a_demoted_officer_keeps_no_session_and_no_token(
    client: TestClient, session: Session
) -> None:
    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund")
    session.commit()
    headers = token_for(client, officer)
    sign_in(client, officer.username)
    assert client.get("/workbench").status_code == 200

    identity.change_role(session, admin, officer.id, "clerk", reason="降职", city_code="320500")
    session.commit()

    assert client.get("/api/v1/me", headers=headers).status_code == 401
    # The browser's session ended too: the workbench sends it to the login page.
    r = client.get("/workbench", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    rows = session.scalars(select(WebSession).where(WebSession.account_id == officer.id)).all()
    assert rows and all(row.end_reason == "role-changed" for row in rows)
    tokens = session.scalars(select(ApiToken).where(ApiToken.account_id == officer.id)).all()
    assert tokens and all(t.revoked_at is not None for t in tokens)
    # Signed in again, the account is a clerk: the officer's workbench is closed to it.
    client.cookies.clear()
    sign_in(client, officer.username)
    assert client.get("/workbench").status_code == 403
    assert client.get("/api/v1/me").json()["role"] == "clerk"


def test_an_admin_cannot_change_their_own_role(session: Session) -> None:
    admin = make_admin(session)
    with pytest.raises(ValidationFailed) as e:
        identity.change_role(session, admin, admin.id, "clerk", reason="x", city_code="320500")
    assert e.value.type == "own-role" and e.value.errors[0].field == "role"
    assert admin.role == "admin" and identity.role_events(session, admin) == []
    # Another administrator may.
    other = make_admin(session)
    identity.change_role(
        session, other, admin.id, "supervisor", reason="轮岗", jurisdiction_code="320000"
    )
    assert admin.role == "supervisor" and admin.jurisdiction_code == "320000"
    with pytest.raises(PermissionDenied):  # no longer an administrator
        identity.change_role(session, admin, other.id, "clerk", reason="x", city_code="320500")


def test_only_an_admin_changes_roles_and_only_of_staff(session: Session) -> None:
    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund")
    supervisor = make_supervisor(session)
    resident = make_resident(session)
    with pytest.raises(PermissionDenied):
        identity.change_role(session, supervisor, officer.id, "clerk", reason="x")
    with pytest.raises(NotFound):
        identity.change_role(session, admin, uuid.uuid4(), "clerk", reason="x")
    for target, role in ((resident, "officer"), (officer, "resident"), (officer, "wizard")):
        with pytest.raises(ValidationFailed) as e:
            identity.change_role(session, admin, target.id, role, reason="x")
        assert e.value.errors[0].field == "role", (target.role, role)
    assert officer.role == "officer" and resident.role == "resident"


@pytest.mark.parametrize(
    ("role", "kw", "field"),
    [
        ("clerk", {"reason": "  "}, "reason"),
        ("clerk", {"reason": "长" * 501}, "reason"),
        ("officer", {"authority_id": uuid.uuid4()}, "authority_id"),
        ("officer", {"duty": "boss"}, "duty"),
        ("clerk", {"city_code": "999900"}, "city_code"),
        ("supervisor", {"jurisdiction_code": "990000"}, "jurisdiction_code"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    session: Session, role: str, kw: dict[str, Any], field: str
) -> None:
    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund")
    kw = {"reason": "调岗", **kw}
    with pytest.raises(ValidationFailed) as e:
        identity.change_role(session, admin, officer.id, role, **kw)
    assert [err.field for err in e.value.errors] == [field]
    assert all("\u4e00" <= ch <= "\u9fff" for ch in e.value.errors[0].message[:1])
    assert officer.role == "officer" and identity.role_events(session, officer) == []


def test_a_role_needs_its_post(session: Session) -> None:
    admin = make_admin(session)
    supervisor = make_supervisor(session)  # a jurisdiction, no city, no department
    with pytest.raises(ValidationFailed) as e:
        identity.change_role(session, admin, supervisor.id, "officer", reason="x")
    assert e.value.errors[0].field == "authority_id"
    supervisor.jurisdiction_code = None
    with pytest.raises(ValidationFailed) as e:
        identity.change_role(session, admin, supervisor.id, "grid_inspector", reason="x")
    assert e.value.errors[0].field == "city_code"


def test_the_post_follows_the_department_and_the_duty_stays(session: Session) -> None:
    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund", duty="approver")
    elsewhere = regions.authority_by_code(session, "340100-public_security")
    identity.change_role(
        session, admin, officer.id, "officer", reason="调动", authority_id=elsewhere.id
    )
    assert officer.authority_id == elsewhere.id and officer.duty == "approver"
    assert (officer.city_code, officer.jurisdiction_code) == ("340100", "340000")
    # The duty alone: the department stays.
    identity.change_role(session, admin, officer.id, "officer", reason="改任受理", duty="reviewer")
    assert officer.duty == "reviewer" and officer.authority_id == elsewhere.id
    assert len(identity.role_events(session, officer)) == 2


def test_the_same_role_again_is_no_change(client: TestClient, session: Session) -> None:
    admin = make_admin(session)
    clerk = make_clerk(session, "320500")
    session.commit()
    headers = token_for(client, clerk)
    identity.change_role(session, admin, clerk.id, "clerk", reason="确认")
    session.commit()
    assert identity.role_events(session, clerk) == []
    assert client.get("/api/v1/me", headers=headers).status_code == 200


# --- the API -----------------------------------------------------------------------------


def test_api_changes_a_role(client: TestClient, session: Session) -> None:
    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund")
    session.commit()
    r = client.put(
        f"/api/v1/accounts/{officer.id}/role",
        json={"role": "dispatcher", "reason": "调往12345中心", "city_code": "320500"},
        headers=token_for(client, admin),
    )
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "dispatcher" and r.json()["city_code"] == "320500"
    session.expire_all()
    [entry] = _role_entries(session, officer)
    assert entry["body"]["evidence"]["to"]["role"] == "dispatcher"
    assert entry["actor"] == f"account:{admin.id}"


def test_api_refuses_as_problem_json(client: TestClient, session: Session) -> None:
    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund")
    resident = make_resident(session)
    session.commit()
    h = token_for(client, admin)
    url = f"/api/v1/accounts/{officer.id}/role"

    cases: list[tuple[str, dict[str, Any], str]] = [
        (url, {"role": "clerk"}, "reason"),  # no reason
        (url, {"role": "clerk", "reason": ""}, "reason"),
        (url, {"role": "wizard", "reason": "x"}, "role"),
        (url, {"role": "resident", "reason": "x"}, "role"),
        (
            url,
            {"role": "officer", "reason": "x", "authority_id": str(uuid.uuid4())},
            "authority_id",
        ),
        (url, {"role": "officer", "reason": "x", "duty": "boss"}, "duty"),
        (url, {"role": "clerk", "reason": "x", "city_code": "999900"}, "city_code"),
        (url, {"role": "clerk", "reason": "x", "city_code": "1"}, "city_code"),
        (f"/api/v1/accounts/{resident.id}/role", {"role": "officer", "reason": "x"}, "role"),
        (f"/api/v1/accounts/{admin.id}/role", {"role": "clerk", "reason": "x"}, "role"),
    ]
    for target, body, field in cases:
        r = client.put(target, json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert _field(r) == {field}, (body, r.json())
        assert r.json()["detail"]
    own = client.put(
        f"/api/v1/accounts/{admin.id}/role", json={"role": "clerk", "reason": "x"}, headers=h
    )
    assert own.json()["type"].endswith("/own-role")

    r = client.put(
        f"/api/v1/accounts/{uuid.uuid4()}/role", json={"role": "clerk", "reason": "x"}, headers=h
    )
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)
    r = client.put(
        url,
        json={"role": "clerk", "reason": "x", "city_code": "320500"},
        headers=token_for(client, officer),
    )
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    assert client.put(url, json={"role": "clerk", "reason": "x"}).status_code == 401
    session.expire_all()
    assert session.get(Account, officer.id).role == "officer"  # type: ignore[union-attr]
    assert _role_entries(session, officer) == []


# --- the pages ---------------------------------------------------------------------------


def test_admin_page_changes_a_role_with_a_reason(client: TestClient, session: Session) -> None:
    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund")
    resident = make_resident(session)
    session.commit()
    sign_in(client, admin.username)

    listing = client.get("/admin/accounts")
    assert listing.status_code == 200 and 'href="/admin/accounts">账号管理</a>' in listing.text
    assert officer.username in listing.text and resident.username not in listing.text
    only_clerks = client.get("/admin/accounts", params={"role": "clerk"})
    assert officer.username not in only_clerks.text
    found = client.get("/admin/accounts", params={"q": officer.username})
    assert officer.username in found.text and admin.username not in found.text
    # An applicant has no page here.
    assert client.get(f"/admin/accounts/{resident.id}").status_code == 404

    page = client.get(f"/admin/accounts/{officer.id}")
    assert page.status_code == 200 and "变更角色" in page.text and "暂无记录" in page.text
    form = {
        "csrf_token": csrf_of(page.text),
        "role": "clerk",
        "city_code": "320500",
        "authority_id": "",
        "duty": "reviewer",
        "jurisdiction_code": "",
        "reason": "",
    }
    r = client.post(f"/admin/accounts/{officer.id}/role", data=form)
    assert r.status_code == 422 and "请填写变更原因" in r.text
    assert 'aria-invalid="true" aria-describedby="reason-error"' in r.text
    r = client.post(
        f"/admin/accounts/{officer.id}/role",
        data={**form, "role": "officer", "authority_id": "not-an-id", "reason": "调动"},
    )
    assert r.status_code == 422 and "部门不存在" in r.text
    r = client.post(
        f"/admin/accounts/{officer.id}/role",
        data={**form, "city_code": "999900", "reason": "调动"},
    )
    assert r.status_code == 422 and "城市不存在" in r.text
    session.expire_all()
    assert session.get(Account, officer.id).role == "officer"  # type: ignore[union-attr]

    r = client.post(
        f"/admin/accounts/{officer.id}/role",
        data={**form, "reason": "调岗至窗口"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    done = client.get(r.headers["location"])
    assert "角色已变更" in done.text and "调岗至窗口" in done.text
    assert "审核/审批人员 → 窗口受理员" in done.text
    session.expire_all()
    assert session.get(Account, officer.id).role == "clerk"  # type: ignore[union-attr]
    [entry] = _role_entries(session, officer)
    assert entry["actor"] == f"account:{admin.id}"

    # Their own page: no form.
    own = client.get(f"/admin/accounts/{admin.id}")
    assert "不能变更自己的角色" in own.text and 'name="reason"' not in own.text


def test_admin_pages_are_for_admins_only(client: TestClient, session: Session) -> None:
    officer = make_officer(session, "320500-housing_fund")
    clerk = make_clerk(session, "320500")
    session.commit()
    sign_in(client, officer.username)
    assert client.get("/admin/accounts").status_code == 403
    assert 'href="/admin/accounts"' not in client.get("/workbench").text
    page = client.get(f"/admin/accounts/{clerk.id}")
    assert page.status_code == 403 and "只有平台管理员" in page.text
    csrf = csrf_of(client.get("/workbench").text)
    r = client.post(
        f"/admin/accounts/{clerk.id}/role",
        data={"csrf_token": csrf, "role": "officer", "reason": "提拔"},
    )
    assert r.status_code == 403
    session.expire_all()
    assert session.get(Account, clerk.id).role == "clerk"  # type: ignore[union-attr]
    client.cookies.clear()
    r = client.get("/admin/accounts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_the_admin_list_says_when_it_shows_only_the_first_accounts(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tongban.identity import views_admin

    admin = make_admin(session)
    make_officer(session, "320500-housing_fund")
    session.commit()
    sign_in(client, admin.username)
    monkeypatch.setattr(views_admin, "_SHOWN", 1)
    listing = client.get("/admin/accounts")
    assert listing.status_code == 200
    assert "前 1 个" in listing.text and "请按角色筛选或搜索" in listing.text
    monkeypatch.setattr(views_admin, "_SHOWN", 1000)
    assert "请按角色筛选或搜索" not in client.get("/admin/accounts").text
