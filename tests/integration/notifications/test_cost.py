"""What hearing a submission costs the case-submission path: the staff's messages are a
few statements beside the submission's own, and a step with no rule costs none."""

from __future__ import annotations

from sqlalchemy import event, select

from tongban.cases import service as cases
from tongban.kernel import events
from tongban.notifications import service
from tongban.notifications.models import Message

from builders import SIMPLE_FORM, SIMPLE_MATTER, make_officer, make_resident, upload

AUTHORITY = "320500-housing_fund"


def _submit_counting(session, engine) -> list[str]:
    resident = make_resident(session)
    att = upload(session, resident)
    session.flush()
    seen: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        cases.submit_online(
            session,
            resident,
            cases.Application(
                matter_code=SIMPLE_MATTER,
                competent_jurisdiction="320000",
                competent_city="320500",
                form_data=dict(SIMPLE_FORM),
                consent=True,
                attachment_ids=[att.id],
            ),
        )
        session.flush()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return seen


def test_a_submission_costs_at_most_three_statements_more(session, engine):
    for _ in range(3):
        make_officer(session, AUTHORITY)
    with_notifications = _submit_counting(session, engine)
    subscribers = events._subscribers[events.HistoryRecorded]
    subscribers.remove(service.on_history)
    try:
        without = _submit_counting(session, engine)
    finally:
        subscribers.append(service.on_history)
    extra = len(with_notifications) - len(without)
    ours = [s for s in with_notifications if "notify_" in s or "FROM account" in s]
    # The staff of the authority, their channel choices, the messages (one batch).
    assert 0 < extra <= 3, (extra, ours)


def test_a_steps_messages_are_one_insert_in_the_steps_transaction(session, engine):
    """Several staff, no channel chosen: every message in one INSERT statement, written
    in the step's transaction — there before the step commits, gone if it rolls back."""
    staff = [make_officer(session, AUTHORITY) for _ in range(3)]
    ids = [o.id for o in staff]
    savepoint = session.begin_nested()
    many: list[bool] = []

    def kind(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO notify_message"):
            many.append(executemany)

    event.listen(engine, "before_cursor_execute", kind)
    try:
        _submit_counting(session, engine)
    finally:
        event.remove(engine, "before_cursor_execute", kind)
    assert many == [False]  # one statement of three rows, not an executemany
    got = set(session.scalars(select(Message.account_id).where(Message.account_id.in_(ids))).all())
    assert got == set(ids)
    savepoint.rollback()
    left = session.scalars(select(Message.id).where(Message.account_id.in_(ids))).all()
    assert left == []


def test_many_messages_go_in_inserts_of_a_bounded_size(session, engine, monkeypatch):
    monkeypatch.setattr(service, "_ROWS_PER_INSERT", 2)
    staff = [make_officer(session, AUTHORITY) for _ in range(3)]
    seen = _submit_counting(session, engine)
    assert len([s for s in seen if s.startswith("INSERT INTO notify_message")]) == 2
    ids = [o.id for o in staff]
    got = session.scalars(select(Message).where(Message.account_id.in_(ids))).all()
    assert sorted(str(m.account_id) for m in got) == sorted(str(i) for i in ids)
    assert all(m.record_id is not None and m.read_at is None for m in got)
