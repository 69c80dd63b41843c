"""A submission's case, first event, claimed uploads, hand-over message and their audit
staging are written by one flush (issue 14), and taken back whole when anything fails."""

from __future__ import annotations

import uuid

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tongban.audit.models import AuditEntry, AuditPending
from tongban.cases import service
from tongban.cases.models import Attachment, Case, CaseEvent
from tongban.cases.replica import CASES
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage

from builders import (
    SIMPLE_FORM,
    SIMPLE_MATTER,
    api_upload,
    make_resident,
    online_application,
    token_for,
    upload,
)


def _application(att_id: uuid.UUID, **kw):  # type: ignore[no-untyped-def]
    return service.Application(
        matter_code=SIMPLE_MATTER,
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data=dict(SIMPLE_FORM),
        consent=True,
        attachment_ids=[att_id],
        **kw,
    )


def test_the_case_and_its_hand_over_are_written_by_one_flush(session):  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    att = upload(session, resident)
    session.flush()
    flushed: list[set[type]] = []

    def seen(s, _ctx, _instances):  # type: ignore[no-untyped-def]
        if s is session:
            flushed.append({type(o) for o in [*s.new, *s.dirty]})

    event.listen(Session, "before_flush", seen)
    try:
        case = service.submit_online(session, resident, _application(att.id))
    finally:
        event.remove(Session, "before_flush", seen)
    writing = [f for f in flushed if f]
    assert len(writing) == 1, flushed
    assert {Case, CaseEvent, OutboxMessage} <= writing[0]
    assert att.case_id == case.id  # the upload claimed in that flush too
    # The message is the snapshot the commit would have built: the case as submitted.
    (msg,) = session.scalars(
        select(OutboxMessage).where(OutboxMessage.payload["number"].as_string() == case.number)
    )
    assert msg.type == "case.forwarded" and msg.target_jurisdiction == "320000"
    assert msg.payload == CASES.snapshot_payload(session, case)
    assert [e["action"] for e in msg.payload["events"]] == ["submit"]
    assert [a["sha256"] for a in msg.payload["attachments"]] == [att.sha256]
    # Both rows are in the audit chain once the submission commits.
    session.commit()
    subjects = set(
        session.scalars(
            select(AuditEntry.subject).where(AuditEntry.kind.in_(("case.event", "message.sent")))
        )
    )
    assert f"case:{case.id}" in subjects
    assert any(msg.id.hex in s.replace("-", "") for s in subjects)


def _counts(session):  # type: ignore[no-untyped-def]
    session.expire_all()
    return tuple(
        session.scalar(select(func.count()).select_from(m))
        for m in (Case, CaseEvent, OutboxMessage, AuditEntry, AuditPending)
    )


def test_a_hand_over_that_fails_leaves_nothing_written(client, session, monkeypatch):  # type: ignore[no-untyped-def]
    h = token_for(client, make_resident(session))
    att_id = api_upload(client, h)
    before = _counts(session)
    real = exchange.send
    sent: list[str] = []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(args[1])
        raise StaleDataError("changed meanwhile")

    monkeypatch.setattr(exchange, "send", failing)
    r = client.post("/api/v1/cases", json=online_application(att_id), headers=h)
    assert sent == ["case.forwarded"]
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert _counts(session) == before
    assert (
        session.scalar(select(Attachment.case_id).where(Attachment.id == uuid.UUID(att_id))) is None
    )
    monkeypatch.setattr(exchange, "send", real)
    r = client.post("/api/v1/cases", json=online_application(att_id), headers=h)
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    assert (
        session.scalar(
            select(func.count()).where(OutboxMessage.payload["number"].as_string() == number)
        )
        == 1
    )
