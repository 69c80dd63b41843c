"""kernel.history publishes HistoryRecorded for every event it records or adopts, with
no SQL of its own: what lets the notifications hear every context's steps."""

from __future__ import annotations

from sqlalchemy import event

from tongban.cases import service as cases
from tongban.cases.models import CaseEvent
from tongban.kernel import events, history

from builders import make_case, make_officer

AUTHORITY = "320500-housing_fund"


def _collect():
    heard: list[events.HistoryRecorded] = []

    @events.subscribe(events.HistoryRecorded)
    def collect(session, ev):  # type: ignore[no-untyped-def]
        heard.append(ev)

    return heard, collect


def _forget(fn) -> None:  # type: ignore[no-untyped-def]
    events._subscribers[events.HistoryRecorded].remove(fn)


def test_record_and_adopt_publish_history_recorded(session):
    heard, collect = _collect()
    try:
        officer = make_officer(session, AUTHORITY)
        case = make_case(session)
        cases.act(session, officer, case.id, "accept")
        assert [(e.kind, e.record_id, e.action, e.seq, e.adopted) for e in heard] == [
            ("service_case", case.id, "submit", 1, False),
            ("service_case", case.id, "forwarded", 2, False),
            ("service_case", case.id, "accept", 3, False),
        ]
        accepted = heard[-1]
        assert (accepted.from_state, accepted.to_state, accepted.actor_id) == (
            "submitted",
            "accepted",
            officer.id,
        )
        # An event made on another node, adopted by this copy: announced as adopted.
        ev = CaseEvent(
            seq=4,
            action="start_review",
            from_state="accepted",
            to_state="under_review",
            actor_name="外省审批人员",
            actor_role="officer",
            comment="",
        )
        assert history.adopt(case, ev)
        assert (heard[-1].action, heard[-1].seq, heard[-1].adopted) == ("start_review", 4, True)
        assert heard[-1].actor_id is None
        # An event the copy has already is neither adopted nor announced again.
        assert not history.adopt(case, ev)
        assert len(heard) == 4
    finally:
        _forget(collect)


def test_a_step_no_one_is_told_of_costs_no_sql(session, engine):
    case = make_case(session)
    session.flush()
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        events.publish(
            session,
            events.HistoryRecorded(
                kind="service_case",
                record_id=case.id,
                action="start_review",
                from_state="accepted",
                to_state="under_review",
                seq=9,
            ),
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statements == []
