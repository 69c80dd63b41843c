"""The message centre over HTTP: the header's unread count (one query), the inbox page
with paging, opening a message, marking all read, the settings form and the API."""

from __future__ import annotations

import re

from sqlalchemy import event

from tongban.notifications import domain, service

from builders import csrf_of, make_officer, make_resident, sign_in, token_for


def _post(session, account, n, prefix="t"):
    rule = domain.rules_for(domain.CASE, "accept")[0]
    for i in range(n):
        service.post(
            session,
            [account.id],
            rule,
            f"办件 {prefix}{i}",
            link=f"/my/cases/{i}",
            record=None,
            dedupe=f"{prefix}:{i}",
        )
    session.commit()


def _badge(html: str) -> str | None:
    m = re.search(r'<a href="/messages">消息(?: <span class="badge overdue">(\d+)<span)?', html)
    assert m, "no message link in the header"
    return m.group(1)


def test_header_shows_the_unread_count_with_one_query(client, session, engine):
    resident = make_resident(session)
    session.commit()
    sign_in(client, resident)
    assert _badge(client.get("/").text) is None  # nothing unread: no badge
    _post(session, resident, 3)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if "notify_message" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        page = client.get("/matters")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert _badge(page.text) == "3"
    assert '3<span class="sr"> 条未读</span>' in page.text
    assert len(statements) == 1 and "count" in statements[0].lower()


def test_inbox_pages_open_marks_read_and_read_all(client, session):
    resident = make_resident(session)
    session.commit()
    _post(session, resident, 23)
    sign_in(client, resident)
    first = client.get("/messages")
    assert first.status_code == 200
    assert "您有 <strong>23</strong> 条未读消息" in first.text
    assert "第 1 / 2 页，共 23 条" in first.text and 'href="/messages?page=2"' in first.text
    ids = re.findall(r'href="/messages/([0-9a-f-]{36})"', first.text)
    assert len(ids) == 20
    second = client.get("/messages?page=2")
    assert len(re.findall(r'href="/messages/([0-9a-f-]{36})"', second.text)) == 3
    opened = client.get(f"/messages/{ids[0]}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"].startswith("/my/cases/")
    assert _badge(client.get("/messages").text) == "22"
    # Another account's message is not found.
    other = make_resident(session)
    session.commit()
    _post(session, other, 1, prefix="o")
    foreign = service.inbox(session, other).messages[0].id
    assert client.get(f"/messages/{foreign}", follow_redirects=False).status_code == 404
    csrf = csrf_of(client.get("/messages").text)
    r = client.post("/messages/read-all", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/messages")
    assert _badge(page.text) is None and "没有未读消息" in page.text
    assert service.unread_count(session, other.id) == 1  # someone else's stay unread


def test_staff_see_the_message_link_too(client, session):
    officer = make_officer(session, "320500-housing_fund")
    session.commit()
    _post(session, officer, 1)
    sign_in(client, officer)
    assert _badge(client.get("/workbench").text) == "1"


def test_settings_form_reports_every_wrong_field_and_saves(client, session):
    resident = make_resident(session)
    session.commit()
    sign_in(client, resident)
    page = client.get("/messages/preferences")
    assert page.status_code == 200 and "短信" in page.text
    assert 'name="by_email"' not in page.text  # no SMTP host configured: not offered
    csrf = csrf_of(page.text)
    bad = client.post(
        "/messages/preferences",
        data={"csrf_token": csrf, "email": "nope", "phone": "123", "by_sms": "on"},
    )
    assert bad.status_code == 422
    assert 'id="email-error"' in bad.text and 'id="phone-error"' in bad.text
    assert 'value="nope"' in bad.text  # what was typed is kept
    ok = client.post(
        "/messages/preferences",
        data={"csrf_token": csrf, "email": "", "phone": "13800138000", "by_sms": "on"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    saved = client.get(ok.headers["location"])
    assert "已保存" in saved.text and 'value="13800138000"' in saved.text


def test_api_inbox_read_and_preferences(client, session):
    resident = make_resident(session)
    session.commit()
    _post(session, resident, 2)
    h = token_for(client, resident)
    body = client.get("/api/v1/messages", headers=h).json()
    assert body["total"] == 2 and body["unread"] == 2 and len(body["items"]) == 2
    assert body["items"][0]["title"] == "您的办件已受理"
    first = body["items"][0]["id"]
    r = client.post(f"/api/v1/messages/{first}/read", headers=h)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    assert client.get("/api/v1/messages/unread", headers=h).json() == {"unread": 1}
    assert client.post("/api/v1/messages/read-all", headers=h).json() == {"marked": 1}
    missing = client.post("/api/v1/messages/00000000-0000-0000-0000-000000000000/read", headers=h)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad = client.put(
        "/api/v1/messages/preferences",
        headers=h,
        json={"email": "x@example.com", "by_email": True, "phone": "1", "by_sms": True},
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"by_email", "phone"}
    good = client.put(
        "/api/v1/messages/preferences", headers=h, json={"phone": "13800138000", "by_sms": True}
    )
    assert good.status_code == 200
    assert good.json() == {
        "email": None,
        "phone": "13800138000",
        "by_email": False,
        "by_sms": True,
        "available": ["sms"],
    }
