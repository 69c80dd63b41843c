"""The read-only audit page: administrators and supervisors only; verification on request."""

from __future__ import annotations

from sqlalchemy import text

from tongban.audit import service

from builders import make_admin, make_case, make_resident, make_supervisor, sign_in


def test_admin_sees_the_chain_and_a_verification(client, session):
    admin = make_admin(session)
    make_case(session)
    session.commit()
    sign_in(client, admin)
    page = client.get("/audit")
    assert page.status_code == 200
    assert "审计链" in page.text and "case.event" in page.text and "message.sent" in page.text
    assert "立即完整校验" in page.text
    ok = client.get("/audit?verify=1")
    assert "校验通过" in ok.text

    seq = service.head(session).seq - 1
    session.execute(text("UPDATE audit_entry SET body = '{}' WHERE seq = :s"), {"s": seq})
    session.commit()
    bad = client.get("/audit?verify=1")
    assert f"校验失败：第 {seq} 条 — 条目被篡改" in bad.text


def test_supervisor_may_read_a_resident_may_not(client, session):
    supervisor, resident = make_supervisor(session), make_resident(session)
    session.commit()
    sign_in(client, supervisor)
    assert client.get("/audit").status_code == 200
    client.cookies.clear()
    sign_in(client, resident)
    assert client.get("/audit").status_code == 403


def test_the_page_shows_witness_alarms_and_says_when_there_are_no_peers(client, session):
    from tongban.audit.models import WitnessAlarm

    admin = make_admin(session)
    session.commit()
    sign_in(client, admin)
    page = client.get("/audit")
    assert "没有对等节点见证检查点" in page.text
    session.add(
        WitnessAlarm(
            origin_node="node-x",
            seq=12,
            hash="a" * 64,
            known_seq=10,
            known_hash="b" * 64,
            reason="inconsistent",
            detail="entry 11 does not extend the chain cosigned at size 10",
        )
    )
    session.commit()
    page = client.get("/audit")
    assert "见证告警" in page.text and "node-x" in page.text
    assert "与此前副署的检查点不一致" in page.text
