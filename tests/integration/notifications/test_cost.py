"""What hearing a submission costs the case-submission path: the staff's messages are a
few statements beside the submission's own, and a step with no rule costs none."""

from __future__ import annotations

from sqlalchemy import event

from tongban.cases import service as cases
from tongban.kernel import events
from tongban.notifications import service

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
