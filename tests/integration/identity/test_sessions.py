"""Server-side sessions (issue 10 item 7): logout, password change, administrators and
timeouts end them, and a cookie copied before is refused after."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from tongban.db import utcnow
from tongban.identity import service
from tongban.identity.models import ApiToken, WebSession

from builders import PASSWORD, csrf_of, make_admin, make_resident, sign_in, token_for

NEW_PASSWORD = "another-horse-2027"


def log_in(c: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the page; returns the session cookie."""
    sign_in(c, username, password)
    return str(c.cookies.get("tongban_session"))


def replay(app, cookie: str) -> TestClient:  # type: ignore[no-untyped-def]
    """Another browser holding a copy of `cookie`."""
    c = TestClient(app, client=("192.0.2.200", 41000))
    c.cookies.set("tongban_session", cookie)
    return c


def _cookie_payload(cookie: str) -> dict[str, str]:
    data = cookie.split(".")[0]
    return dict(json.loads(base64.b64decode(data + "=" * (-len(data) % 4))))


def test_a_cookie_copied_before_logout_is_refused_after_it(app, client, session):
    resident = make_resident(session)
    session.commit()
    cookie = log_in(client, resident.username)
    copy = replay(app, cookie)
    assert copy.get("/api/v1/me").json()["username"] == resident.username
    page = client.get("/my/cases")
    csrf = csrf_of(page.text)
    assert (
        client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    )
    # The copy, replayed after logout: not signed in, neither API nor pages …
    r = copy.get("/api/v1/me")
    assert r.status_code == 401
    copy2 = replay(app, cookie)
    assert copy2.get("/my/cases", follow_redirects=False).status_code == 303
    # … and its form token is worth nothing either.
    copy3 = replay(app, cookie)
    r = copy3.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": PASSWORD, "new_password": NEW_PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code in (303, 401, 403)
    row = session.scalars(select(WebSession).where(WebSession.account_id == resident.id)).one()
    session.refresh(row)
    assert row.ended_at is not None and row.end_reason == "logout"


def test_only_a_hash_of_the_session_id_is_stored(client, session):
    resident = make_resident(session)
    session.commit()
    cookie = log_in(client, resident.username)
    sid = _cookie_payload(cookie)["sid"]
    assert "account_id" not in _cookie_payload(cookie)
    row = session.scalars(select(WebSession).where(WebSession.account_id == resident.id)).one()
    assert row.id_hash == hashlib.sha256(sid.encode()).hexdigest() and sid not in row.id_hash
    assert row.client_ip == "testclient" and row.expires_at > utcnow() + timedelta(hours=7)


def test_a_new_session_and_csrf_token_at_each_sign_in(client, session):
    resident = make_resident(session)
    session.commit()
    anonymous_csrf = csrf_of(client.get("/login").text)
    log_in(client, resident.username)
    signed_in_csrf = csrf_of(client.get("/my/cases").text)
    assert signed_in_csrf != anonymous_csrf
    row = session.scalars(select(WebSession).where(WebSession.account_id == resident.id)).one()
    assert row.csrf == signed_in_csrf


def test_password_change_ends_other_sessions_and_every_token(app, client, session):
    resident = make_resident(session)
    session.commit()
    other_cookie = log_in(TestClient(app), resident.username)
    token = token_for(client, resident)
    log_in(client, resident.username)
    csrf = csrf_of(client.get("/account/password").text)
    # A weak new password is refused with the reason, nothing ends.
    r = client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": PASSWORD, "new_password": "12345678"},
    )
    assert r.status_code == 422 and "过于常见" in r.text
    assert replay(app, other_cookie).get("/api/v1/me").status_code == 200
    r = client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": "wrong-one", "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 422 and "当前密码不正确" in r.text
    r = client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 200 and "密码已修改" in r.text
    # This session stays; the other browser and the API token do not.
    assert client.get("/api/v1/me").json()["username"] == resident.username
    assert replay(app, other_cookie).get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=token).status_code == 401
    ended = session.scalars(
        select(WebSession.end_reason).where(WebSession.account_id == resident.id)
    ).all()
    assert sorted(ended, key=str) == sorted([None, "password-changed"], key=str)
    session.expire_all()
    assert service.authenticate(session, resident.username, NEW_PASSWORD).id == resident.id


def test_password_change_through_the_api_revokes_every_token(app, client, session):
    resident = make_resident(session)
    session.commit()
    cookie = log_in(TestClient(app), resident.username)
    h, other = token_for(client, resident), token_for(client, resident)
    r = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "password"},
        headers=h,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "new_password"
    assert any("过于常见" in e["message"] for e in r.json()["errors"])
    r = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=h,
    )
    assert r.status_code == 204
    assert client.get("/api/v1/me", headers=h).status_code == 401
    assert client.get("/api/v1/me", headers=other).status_code == 401
    assert replay(app, cookie).get("/api/v1/me").status_code == 401
    revoked = session.scalars(
        select(ApiToken.revoked_at).where(ApiToken.account_id == resident.id)
    ).all()
    assert len(revoked) == 2 and all(revoked)


def test_idle_and_old_sessions_end(app, client, session):
    resident = make_resident(session)
    session.commit()
    idle_cookie = log_in(TestClient(app), resident.username)
    old_cookie = log_in(TestClient(app), resident.username)
    rows = session.scalars(
        select(WebSession)
        .where(WebSession.account_id == resident.id)
        .order_by(WebSession.created_at)
    ).all()
    by_sid = {r.id_hash: r for r in rows}
    idle = by_sid[hashlib.sha256(_cookie_payload(idle_cookie)["sid"].encode()).hexdigest()]
    old = by_sid[hashlib.sha256(_cookie_payload(old_cookie)["sid"].encode()).hexdigest()]
    idle.last_seen_at = utcnow() - timedelta(minutes=31)
    old.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert replay(app, idle_cookie).get("/api/v1/me").status_code == 401
    assert replay(app, old_cookie).get("/api/v1/me").status_code == 401
    session.refresh(idle)
    session.refresh(old)
    assert (idle.end_reason, old.end_reason) == ("idle", "expired")


def test_an_administrator_signs_an_account_out_everywhere(app, client, session):
    resident, admin = make_resident(session), make_admin(session)
    session.commit()
    cookie = log_in(TestClient(app), resident.username)
    resident_token = token_for(client, resident)
    url = f"/api/v1/accounts/{resident.id}/sessions/end"
    assert client.post(url, headers=resident_token).status_code == 403
    r = client.post(url, headers=token_for(client, admin))
    assert r.status_code == 200 and r.json() == {"ended": 1}
    assert replay(app, cookie).get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=resident_token).status_code == 401


def test_end_sessions_keeps_the_one_named(session):
    resident = make_resident(session)
    _, keep = service.begin_session(session, resident)
    _, other = service.begin_session(session, resident)
    assert service.end_sessions(session, resident.id, "assurance-changed", keep=keep.id) == 1
    session.refresh(keep)
    session.refresh(other)
    assert keep.ended_at is None and other.end_reason == "assurance-changed"
    assert [s.id for s in service.live_sessions(session, resident.id)] == [keep.id]


def test_guesses_of_the_current_password_are_throttled(app, client, session):
    """A stolen session cannot be used to guess the password at full speed."""
    resident = make_resident(session)
    session.commit()
    log_in(client, resident.username)
    csrf = csrf_of(client.get("/account/password").text)
    answers = [
        client.post(
            "/account/password",
            data={"csrf_token": csrf, "current_password": f"guess-{i}", "new_password": "x"},
        )
        for i in range(7)
    ]
    assert [a.status_code for a in answers[:6]] == [422] * 6
    assert answers[6].status_code == 429 and answers[6].headers["retry-after"]
    # The API too (its own client address, its own count).
    h = token_for(TestClient(app, client=("192.0.2.201", 41000)), resident)
    api = TestClient(app, client=("192.0.2.202", 41000))
    codes = [
        api.post(
            "/api/v1/me/password",
            json={"current_password": f"guess-{i}", "new_password": NEW_PASSWORD},
            headers=h,
        ).status_code
        for i in range(7)
    ]
    assert codes == [422] * 6 + [429]


def test_signing_in_again_ends_the_previous_session(app, client, session):
    first, second = make_resident(session), make_resident(session)
    session.commit()
    old_cookie = log_in(client, first.username)
    log_in(client, second.username)
    assert client.get("/api/v1/me").json()["username"] == second.username
    assert replay(app, old_cookie).get("/api/v1/me").status_code == 401
    row = session.scalars(select(WebSession).where(WebSession.account_id == first.id)).one()
    session.refresh(row)
    assert row.end_reason == "signed-in-again"
