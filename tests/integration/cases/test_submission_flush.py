"""A submission writes its rows without a unit-of-work flush (issue 14): the case and
its first event by two Core INSERTs, joining the session as persistent
(`kernel.history.insert_new`), the uploads claimed by guarded UPDATEs, the hand-over
message by a Core INSERT, and the audit entries of the event and the message staged by
one statement at the commit; taken back whole when anything fails."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tongban.audit import hook
from tongban.audit import service as audit
from tongban.audit.domain import canonical_json
from tongban.audit.models import AuditEntry, AuditPending
from tongban.cases import attachments, service, submission
from tongban.cases.models import Attachment, Case, CaseEvent
from tongban.cases.replica import CASES
from tongban.errors import PermissionDenied
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


def test_the_case_and_its_hand_over_are_written_without_a_flush(session):  # type: ignore[no-untyped-def]
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
    assert [f for f in flushed if f] == []  # nothing left for a flush to write
    assert not session.new and not session.dirty
    assert att.case_id == case.id  # the upload claimed by its own UPDATE
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


@pytest.fixture
def statements(engine):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def executed(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", executed)
    yield seen
    event.remove(engine, "before_cursor_execute", executed)


def test_rows_by_core_statements_and_entries_by_one_staging_statement(session, statements):  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    att = upload(session, resident)
    session.flush()
    start = len(statements)
    case = service.submit_online(session, resident, _application(att.id))
    mine = statements[start:]
    kinds = [st.split(" (")[0].split(" VALUES")[0].split(" SET")[0] for st in mine]
    for written in ("INSERT INTO service_case", "INSERT INTO case_event", "UPDATE attachment"):
        assert kinds.count(written) == 1, kinds
    assert kinds.count("INSERT INTO outbox_message") == 1, kinds
    assert kinds.index("INSERT INTO service_case") < kinds.index("INSERT INTO case_event")
    # The entries wait for one staging statement: at the commit, the event's first.
    assert not any(st.startswith("INSERT INTO audit_pending") for st in mine)
    assert [e["kind"] for e in session.info[hook._AHEAD]] == ["case.event", "message.sent"]
    start = len(statements)
    session.commit()
    staging = [st for st in statements[start:] if st.startswith("INSERT INTO audit_pending")]
    assert len(staging) == 1
    chained = [
        (e.kind, e.subject)
        for e in audit.iter_entries(session, 0)
        if e.kind in ("case.event", "message.sent")
    ][-2:]
    assert chained[0] == ("case.event", f"case:{case.id}")
    assert chained[1][0] == "message.sent"


def test_an_upload_claimed_meanwhile_is_refused_and_nothing_is_written(session):  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    att = upload(session, resident)
    session.flush()
    first = service.submit_online(session, resident, _application(upload(session, resident).id))
    before = _counts(session)
    assert session.get(Attachment, att.id) is att  # the claim below reads this object
    # Another transaction's claim, unseen by this session's copy of the upload (still
    # unclaimed in memory): the guarded UPDATE finds it taken.
    session.connection().execute(
        update(Attachment).where(Attachment.id == att.id).values(case_id=first.id)
    )
    savepoint = session.begin_nested()
    with pytest.raises(PermissionDenied) as refused:
        service.submit_online(session, resident, _application(att.id))
    savepoint.rollback()
    assert refused.value.type == "attachment-not-yours"
    assert _counts(session) == before  # no case, event, message or entry of the refused one


def test_the_written_case_is_persistent_and_read_from_memory(session, statements):  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    att = upload(session, resident)
    session.flush()
    case = service.submit_online(session, resident, _application(att.id))
    start = len(statements)
    # Everything a later step of the request reads is in memory: no SELECT.
    values = {c.key: getattr(case, c.key) for c in Case.__table__.c}
    (ev,) = case.events
    ev_values = {c.key: getattr(ev, c.key) for c in CaseEvent.__table__.c}
    assert case.attachments == [att] and att.case_id == case.id
    assert case.subtasks == [] and case.presented_licences == []
    assert session.get(Case, case.id) is case
    assert ev.case is case
    assert statements[start:] == []
    assert values["version"] == 1 and values["event_seq"] == 1
    assert ev_values["seq"] == 1 and ev_values["action"] == "submit"
    # … and it is what the database holds (Python-side defaults applied alike).
    session.commit()
    session.expire_all()
    assert {c.key: getattr(case, c.key) for c in Case.__table__.c} == values
    assert {c.key: getattr(case.events[0], c.key) for c in CaseEvent.__table__.c} == ev_values


def test_a_later_change_in_the_same_transaction_is_version_guarded(session):  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    att = upload(session, resident)
    session.flush()
    case = service.submit_online(session, resident, _application(att.id))
    case.handoff = "sent"
    session.flush()  # UPDATE … WHERE version = 1
    assert case.version == 2
    session.expire_all()
    assert (case.handoff, case.version) == ("sent", 2)


def test_the_events_entry_is_the_one_a_flush_gives_it_and_the_chain_verifies(session):  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    att = upload(session, resident)
    session.flush()
    case = service.submit_online(session, resident, _application(att.id))
    session.commit()
    (ev,) = case.events
    (entry,) = [e for e in audit.about(session, f"case:{case.id}") if e.kind == "case.event"]
    subject, actor, body = hook.audit_record(ev, entry.alg)
    assert (entry.subject, entry.actor) == (subject, actor)
    assert json.loads(entry.body) == json.loads(canonical_json(body))
    report = audit.verify(session)  # what `tongban audit verify` runs
    assert report.ok, report.finding


def test_a_claim_refused_after_the_core_inserts_leaves_nothing(client, session, monkeypatch):  # type: ignore[no-untyped-def]
    h = token_for(client, make_resident(session))
    att_id = api_upload(client, h)
    before = _counts(session)
    real = attachments.link_uploads
    linked: list[bool] = []

    def taken(*args, **kwargs):  # type: ignore[no-untyped-def]
        linked.append(True)  # after the case and its event were written
        raise PermissionDenied("不能使用他人或已提交的附件", type="attachment-not-yours")

    monkeypatch.setattr(submission, "link_uploads", taken)
    r = client.post("/api/v1/cases", json=online_application(att_id), headers=h)
    assert linked
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("attachment-not-yours")
    assert _counts(session) == before  # no case, event, message, staged or chained entry
    assert (
        session.scalar(select(Attachment.case_id).where(Attachment.id == uuid.UUID(att_id))) is None
    )
    monkeypatch.setattr(submission, "link_uploads", real)
    r = client.post("/api/v1/cases", json=online_application(att_id), headers=h)
    assert r.status_code == 201, r.text
    assert audit.verify(session).ok
