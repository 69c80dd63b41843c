"""The audit page as a supervisor reads it: Chinese event names, actors and objects by
name, filters by time, kind and actor, paging, and only the reader's jurisdiction."""

from __future__ import annotations

import uuid

from tongban.audit import service, views_reading

from builders import make_admin, make_clerk, make_supervisor, sign_in


def _entries(response):
    """The page's entries section (the counts above it name every kind)."""
    after = response.text.split('id="entries"', 1)[1]
    return after.split("<tbody>", 1)[1] if "<tbody>" in after else after.split("</form>", 1)[1]


def _seed(session):
    clerk_sh = make_clerk(session, "310000")  # 上海
    clerk_sz = make_clerk(session, "320500")  # 苏州 (江苏)
    lic = f"licence:{uuid.uuid4()}"
    service.record(session, "licence.event", lic, f"account:{clerk_sh.id}", {"action": "issue"})
    service.record(
        session, "message.sent", f"message:{uuid.uuid4()}", "system",
        {"source_jurisdiction": "340000", "target_jurisdiction": "320000", "type": "x"},
    )  # fmt: skip
    service.record(session, "case.event", f"case:{uuid.uuid4()}", f"account:{clerk_sz.id}",
                   {"action": "accept"})  # fmt: skip
    service.record(session, "account.event", f"account:{clerk_sh.id}", "system",
                   {"action": "created"})  # fmt: skip
    return clerk_sh, clerk_sz


def test_a_supervisor_reads_named_entries_of_their_own_jurisdiction_only(client, session):
    clerk_sh, clerk_sz = _seed(session)
    supervisor = make_supervisor(session, "320000")
    session.commit()
    sign_in(client, supervisor)
    page = _entries(client.get("/audit"))
    assert "办件 · 受理" in page and clerk_sz.display_name in page  # acted by a 江苏 clerk
    assert "跨域消息发送" in page  # names 江苏 as its target
    assert "电子证照 · 签发" not in page and clerk_sh.display_name not in page  # 上海's
    assert "仅显示与本辖区有关的条目" in client.get("/audit").text
    assert f"account:{clerk_sz.id}" not in page  # names, not internal references


def test_admin_filters_by_kind_actor_and_time_and_pages(client, session):
    clerk_sh, _ = _seed(session)
    admin = make_admin(session)
    session.commit()
    sign_in(client, admin)
    by_kind = _entries(client.get("/audit", params={"kind": "licence.event"}))
    assert "电子证照 · 签发" in by_kind and "办件 · 受理" not in by_kind
    by_actor = _entries(client.get("/audit", params={"actor": clerk_sh.username}))
    assert "电子证照 · 签发" in by_actor and "跨域消息发送" not in by_actor
    system = _entries(client.get("/audit", params={"actor": "system"}))
    assert "跨域消息发送" in system and "电子证照 · 签发" not in system
    assert f"账号 {clerk_sh.display_name}" in system  # the account.event's object by name
    old = _entries(client.get("/audit", params={"until": "2000-01-01"}))
    assert "没有符合条件的条目" in old
    assert client.get("/audit", params={"since": "not-a-date"}).status_code == 200

    rows, next_before = views_reading.page(session, views_reading.Filters(), None, limit=2)
    assert len(rows) == 2 and next_before == rows[-1].seq
    older, _ = views_reading.page(session, views_reading.Filters(before=next_before), None, limit=2)
    assert older and all(r.seq < next_before for r in older)
