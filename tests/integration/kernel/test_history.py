"""kernel.history on a real record (a case): events numbered from the record's counter,
the version bumped with each, the payload kept and put in the audit chain as a digest,
duplicate numbers impossible, stale writers refused with 409 concurrent-change."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tongban.audit import service as audit
from tongban.cases.models import Case, CaseEvent
from tongban.errors import ConcurrentChange
from tongban.kernel import history
from tongban.kernel.history import SYSTEM, Who

from builders import make_case, make_officer


def test_record_numbers_from_the_counter_bumps_the_version_and_keeps_the_payload(session):
    case = make_case(session)
    officer = make_officer(session, "320500-housing_fund")
    seq, version = case.event_seq, case.version
    assert seq == len(case.events) >= 2  # submit, forwarded

    ev = history.record(
        session, case, "note", officer, case.state, case.state, "补充说明", {"k": [1, 2]}
    )

    assert (ev.seq, case.event_seq, case.version) == (seq + 1, seq + 1, version + 1)
    assert (ev.actor_id, ev.actor_name, ev.actor_role) == (
        officer.id,
        officer.display_name,
        officer.role,
    )
    session.expire_all()
    stored = session.scalar(select(CaseEvent).where(CaseEvent.id == ev.id))
    assert stored is not None and stored.payload == {"k": [1, 2]}
    assert stored.comment == "补充说明" and stored.seq == seq + 1


def test_the_number_comes_from_the_counter_even_when_the_list_says_otherwise(session):
    """A record whose event list is not (fully) loaded still gets the next number: the
    counter, not len(events)+1, decides (what a copy that adopted events relies on)."""
    case = make_case(session)
    case.event_seq = 7  # e.g. a copy that adopted events 3..7 from the other node
    session.flush()
    ev = history.record(session, case, "note", None, case.state, case.state)
    assert ev.seq == 8 and (ev.actor_name, ev.actor_role, ev.actor_id) == ("系统", "system", None)


def test_each_event_joins_the_audit_chain_with_payload_and_comment_as_digests(session):
    case = make_case(session)
    history.record(
        session, case, "note", Who(None, "他节点人员", "officer"), "a", "b", "理由", {"x": 1}
    )
    session.commit()
    about = audit.about(session, f"case:{case.id}")
    body = json.loads(about[-1].body)
    assert about[-1].kind == "case.event"
    assert body["action"] == "note" and body["actor_role"] == "officer"
    assert len(body["comment_digest"]) == 64 and len(body["payload_digest"]) == 64
    assert "comment" not in body and "payload" not in body


def _add_first_event_again(session, case, action: str) -> None:  # type: ignore[no-untyped-def]
    """Write a second event numbered 1 on `case` past the kernel (as a racing writer would)."""
    session.add(
        CaseEvent(
            case_id=case.id,
            seq=1,
            action=action,
            from_state=None,
            to_state="submitted",
            actor_name="x",
            actor_role="system",
        )
    )
    session.flush()


def test_two_events_with_one_number_are_impossible(session):
    case = make_case(session)
    with pytest.raises(IntegrityError), session.begin_nested():
        _add_first_event_again(session, case, "forged")


def test_guarded_turns_a_duplicate_number_into_a_409(session):
    case = make_case(session)
    with pytest.raises(ConcurrentChange) as e, session.begin_nested(), history.guarded():
        _add_first_event_again(session, case, "again")
    assert (e.value.status, e.value.type) == (409, "concurrent-change")


def test_adopt_keeps_the_counter_in_step_and_ignores_what_it_has(session):
    case = make_case(session)
    n = case.event_seq

    def ev(seq: int) -> CaseEvent:
        return CaseEvent(
            seq=seq,
            action="remote",
            from_state="submitted",
            to_state="submitted",
            actor_name="他节点",
            actor_role="officer",
        )

    assert history.adopt(case, ev(n)) is False
    assert history.adopt(case, ev(n + 1)) is True
    session.flush()
    assert case.event_seq == n + 1
    assert history.record(session, case, "note", SYSTEM, None, "submitted").seq == n + 2
    assert isinstance(session.get(Case, case.id), Case)
