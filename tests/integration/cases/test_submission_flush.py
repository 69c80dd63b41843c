"""A submission's case, first event, claimed uploads, hand-over message and their audit
staging are written by one flush (issue 14), and taken back whole when anything fails."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tongban.audit import service as audit
from tongban.audit.domain import field_digest
from tongban.audit.models import AuditEntry, AuditPending
from tongban.cases import service
from tongban.cases.models import Attachment, Case, CaseEvent
from tongban.cases.replica import CASES
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.kernel import history

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


def test_the_case_and_its_hand_over_are_written_by_one_flush(session, engine):  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    att = upload(session, resident)
    session.flush()
    flushed: list[set[type]] = []
    statements: list[str] = []

    def seen(s, _ctx, _instances):  # type: ignore[no-untyped-def]
        if s is session:
            flushed.append({type(o) for o in [*s.new, *s.dirty]})
            statements.append("-- flush")

    def executed(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(Session, "before_flush", seen)
    event.listen(engine, "before_cursor_execute", executed)
    try:
        case = service.submit_online(session, resident, _application(att.id))
    finally:
        event.remove(Session, "before_flush", seen)
        event.remove(engine, "before_cursor_execute", executed)
    writing = [f for f in flushed if f]
    assert len(writing) == 1, flushed
    assert {Case, CaseEvent} <= writing[0]
    # The hand-over is one Core INSERT before that flush (no ORM object), and its audit
    # entry is staged by the flush's one staging statement with the event's (issue 14).
    assert OutboxMessage not in writing[0]
    outbox = [i for i, st in enumerate(statements) if st.startswith("INSERT INTO outbox_message")]
    staging = [i for i, st in enumerate(statements) if st.startswith("INSERT INTO audit_pending")]
    assert len(outbox) == 1 and len(staging) == 1, statements
    assert outbox[0] < statements.index("-- flush") < staging[0]
    assert att.case_id == case.id  # the upload claimed in that flush too
    # The message is the snapshot the commit would have built: the case as submitted.
    (msg,) = session.scalars(
        select(OutboxMessage).where(OutboxMessage.payload["number"].as_string() == case.number)
    )
    assert msg.type == "case.forwarded" and msg.target_jurisdiction == "320000"
    assert msg.payload == CASES.snapshot_payload(session, case)
    assert [e["action"] for e in msg.payload["events"]] == ["submit"]
    assert [a["sha256"] for a in msg.payload["attachments"]] == [att.sha256]
    # Both rows are in the audit chain once the submission commits, in the order they
    # were before the message became a Core INSERT (message.sent, then case.event), with
    # the entry a flushed OutboxMessage gets; the chain verifies (`tongban audit verify`).
    session.commit()
    entries = session.execute(
        select(AuditEntry.kind, AuditEntry.subject, AuditEntry.body)
        .where(AuditEntry.subject.in_((f"case:{case.id}", f"message:{msg.id}")))
        .order_by(AuditEntry.seq)
    ).all()
    assert [(e.kind, e.subject) for e in entries] == [
        ("message.sent", f"message:{msg.id}"),
        ("case.event", f"case:{case.id}"),
    ]
    assert json.loads(entries[0].body) == {
        "id": str(msg.id),
        "type": "case.forwarded",
        "source_jurisdiction": msg.source_jurisdiction,
        "target_jurisdiction": "320000",
        "payload_digest": field_digest("sha-256", msg.payload),
    }
    assert audit.verify(session).ok


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
    real = exchange.send_written
    sent: list[str] = []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(args[1])
        raise StaleDataError("changed meanwhile")

    monkeypatch.setattr(exchange, "send_written", failing)
    r = client.post("/api/v1/cases", json=online_application(att_id), headers=h)
    assert sent == ["case.forwarded"]
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert _counts(session) == before
    assert (
        session.scalar(select(Attachment.case_id).where(Attachment.id == uuid.UUID(att_id))) is None
    )
    monkeypatch.setattr(exchange, "send_written", real)
    r = client.post("/api/v1/cases", json=online_application(att_id), headers=h)
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    assert (
        session.scalar(
            select(func.count()).where(OutboxMessage.payload["number"].as_string() == number)
        )
        == 1
    )


@pytest.mark.parametrize("where", ["after the message's INSERT", "in the one flush"])
def test_a_failure_after_the_message_was_written_leaves_nothing(
    client, session, monkeypatch, where
):  # type: ignore[no-untyped-def]
    """The hand-over's Core INSERT runs before the flush: a failure after it (the
    message written, its audit entry held for the flush), or of the flush itself, takes
    back the message with the case, and no entry is left staged or chained."""
    h = token_for(client, make_resident(session))
    att_id = api_upload(client, h)
    before = _counts(session)
    written: list[uuid.UUID] = []
    if where == "in the one flush":
        real_flush = history.flush

        def failing_flush(s):  # type: ignore[no-untyped-def]
            if s.info.get("tongban.audit.ahead"):  # the hand-over's entry is waiting
                written.append(uuid.uuid4())
                raise StaleDataError("changed meanwhile")
            real_flush(s)

        monkeypatch.setattr(history, "flush", failing_flush)
    else:
        real = exchange.send_written

        def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
            written.append(real(*args, **kwargs))
            raise StaleDataError("changed meanwhile")

        monkeypatch.setattr(exchange, "send_written", failing)
    r = client.post("/api/v1/cases", json=online_application(att_id), headers=h)
    assert written and r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _counts(session) == before
    assert (
        session.scalar(select(Attachment.case_id).where(Attachment.id == uuid.UUID(att_id))) is None
    )
    monkeypatch.undo()
    r = client.post("/api/v1/cases", json=online_application(att_id), headers=h)
    assert r.status_code == 201, r.text
    assert audit.verify(session).ok
