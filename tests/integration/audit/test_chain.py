"""The audit chain on a real database (SQLite and PostgreSQL): entries written by the
write path itself, then rows altered directly with SQL and each tampering caught."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import func, select, text

from tongban.audit import domain, service, tasks
from tongban.audit.domain import Problem
from tongban.audit.models import AuditCheckpoint, AuditEntry
from tongban.cases import service as cases
from tongban.cases.models import CaseEvent
from tongban.exchange.models import OutboxMessage
from tongban.kernel import replication
from tongban.kernel.node import bind_settings
from tongban.keys import service as keys

from builders import make_case, make_officer, make_resident

NODE = "local"


def entry_count(session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry))


def head_seq(session) -> int:
    h = service.head(session)
    assert h is not None
    return h.seq


def activity(session, cases_n: int = 2) -> None:
    """Real entries: cases submitted, forwarded through the outbox and acted upon."""
    officer = make_officer(session, "320500-housing_fund")
    for _ in range(cases_n):
        case = make_case(session)
        cases.act(session, officer, case.id, "accept", "材料齐全")
    session.commit()


def problem(session) -> tuple[Problem, int]:
    report = service.verify(session)
    assert report.finding is not None, "tampering not detected"
    return report.finding.problem, report.finding.seq


# --- the write path ------------------------------------------------------------------


def test_case_activity_is_audited_without_the_handler_asking(session):
    before = head_seq(session)
    resident = make_resident(session)
    case = make_case(session, resident)
    officer = make_officer(session, "320500-housing_fund")
    cases.act(session, officer, case.id, "accept", "材料齐全，予以受理")
    session.commit()

    about = service.about(session, f"case:{case.id}")
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    assert [e.kind for e in about] == ["case.event"] * len(events)
    assert len(events) >= 2
    accepted = json.loads(about[-1].body)
    assert accepted["action"] == "accept" and accepted["to_state"] == "accepted"
    assert about[-1].actor == f"account:{officer.id}"
    # Minimised: the comment only as a digest; the applicant's identity never.
    assert "comment" not in accepted and len(accepted["comment_digest"]) == 64
    kinds = {e.kind for e in service.recent(session, 100) if e.seq > before}
    assert {"case.event", "message.sent", "message.applied"} <= kinds
    for e in service.recent(session, 100):
        if e.seq > before:
            assert resident.id_number not in e.body and resident.display_name not in e.body
    assert service.verify(session).ok


def test_message_entries_link_sent_and_applied_by_subject(session):
    make_case(session)
    msg = session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at.desc())).first()
    kinds = [e.kind for e in service.about(session, f"message:{msg.id}")]
    assert kinds == ["message.sent", "message.applied"]
    sent = json.loads(service.about(session, f"message:{msg.id}")[0].body)
    assert sent["type"] == msg.type and "payload" not in sent
    assert sent["payload_digest"] == domain.field_digest("sha-256", msg.payload)


def test_rollback_leaves_neither_the_event_nor_the_entry(session):
    officer = make_officer(session, "320500-housing_fund")
    case = make_case(session)
    session.commit()
    events_before = session.scalar(select(func.count()).select_from(CaseEvent))
    entries_before, head_before = entry_count(session), service.head(session)

    cases.act(session, officer, case.id, "accept")  # an event (its message: at commit)
    added = entry_count(session) - entries_before
    assert added >= 1  # appended at flush, in the same transaction
    replication.send_now(session)  # the status message, as the commit would write it
    session.flush()
    added = entry_count(session) - entries_before
    assert added >= 2
    session.rollback()

    assert session.scalar(select(func.count()).select_from(CaseEvent)) == events_before
    assert entry_count(session) == entries_before
    assert service.head(session) == head_before
    cases.act(session, officer, case.id, "accept")  # the chain goes on from where it was
    session.commit()
    assert head_seq(session) == head_before.seq + added and service.verify(session).ok


def test_explicit_record_is_canonical_and_in_the_chain(session):
    service.record(session, "evidence.access", "case:x", "account:y", {"b": 2, "a": "苏州"})
    e = service.recent(session, 1)[0]
    assert e.kind == "evidence.access" and e.body == '{"a":"苏州","b":2}'
    stored = session.get(AuditEntry, e.seq)
    assert stored.hash == e.hash and stored.prev_hash == e.prev_hash
    assert service.verify(session).ok


def test_sm3_chain_from_the_setting(session, factory, settings):
    """The hash comes from the settings of the node whose session writes (the test's
    process has none set): the same database chained by a node switched to SM3."""
    service.record(session, "test.sha", "s", "a", {})
    session.commit()
    sm3 = bind_settings(factory, settings.model_copy(update={"audit_hash": "sm3"}))
    with sm3() as s:
        activity(s, 1)
    report = service.verify(session)
    assert report.ok and "sm3" in report.algs and "sha-256" in report.algs
    last = service.recent(session, 1)[0]
    assert last.alg == "sm3"


# --- checkpoints ---------------------------------------------------------------------


def test_checkpoint_signs_the_head_and_only_when_there_is_something_new(session):
    activity(session, 1)
    cp = service.checkpoint(session, NODE)
    assert cp is not None and cp.seq == head_seq(session)
    assert service.checkpoint(session, NODE) is None
    key_row = keys.current_row(session, "audit", NODE)
    assert key_row is not None and cp.kid == key_row.kid
    report = service.verify(session)
    assert report.ok and report.checkpoints == 1 and report.last_checkpoint == cp.seq


def test_key_rotation_keeps_old_checkpoints_verifying(session):
    activity(session, 1)
    first = service.checkpoint(session, NODE)
    keys.rotate(session, "audit", NODE, "SM2")
    activity(session, 1)
    second = service.checkpoint(session, NODE)
    assert first.kid != second.kid and second.alg == "SM2"
    report = service.verify(session)
    assert report.ok and report.checkpoints == 2


def test_a_withdrawn_key_no_longer_vouches_for_later_checkpoints(session):
    activity(session, 1)
    cp = service.checkpoint(session, NODE)
    keys.withdraw(session, cp.kid, at=cp.at.replace(year=cp.at.year - 1))
    assert problem(session) == (Problem.CHECKPOINT_SIGNATURE, cp.seq)


def test_worker_job_checkpoints_when_due(session, factory, settings):
    activity(session, 1)
    assert tasks.make_checkpoint(factory, settings) == head_seq(session)
    assert tasks.make_checkpoint(factory, settings) is None  # nothing new
    activity(session, 1)
    # New entries, but the last checkpoint is younger than the interval.
    assert tasks.make_checkpoint(factory, settings) is None
    now = settings.model_copy(update={"audit_checkpoint_seconds": 0})
    assert tasks.make_checkpoint(factory, now) == head_seq(session)
    assert any(j.name == "audit.checkpoint" for j in tasks.JOBS)


def test_checkpoint_refuses_to_sign_a_broken_chain(session):
    activity(session, 1)
    seq = head_seq(session) - 1
    session.execute(text("UPDATE audit_entry SET body = '{}' WHERE seq = :s"), {"s": seq})
    with pytest.raises(service.ChainBroken) as exc:
        service.checkpoint(session, NODE)
    assert exc.value.report.finding.seq == seq
    assert session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0


# --- tampering, directly in the database ---------------------------------------------


def test_altered_body_is_named(session):
    activity(session)
    k = head_seq(session) - 3
    session.execute(
        text("UPDATE audit_entry SET body = :b WHERE seq = :s"),
        {"b": '{"action":"approve"}', "s": k},
    )
    assert problem(session) == (Problem.ALTERED, k)


def test_altered_actor_is_named(session):
    activity(session)
    # The last entry with a person as its actor (the messages written at commit, last,
    # are the system's).
    k = session.scalar(select(func.max(AuditEntry.seq)).where(AuditEntry.actor != "system"))
    session.execute(text("UPDATE audit_entry SET actor = 'system' WHERE seq = :s"), {"s": k})
    assert problem(session) == (Problem.ALTERED, k)


def test_deleted_row_is_named(session):
    activity(session)
    k = head_seq(session) - 4
    session.execute(text("DELETE FROM audit_entry WHERE seq = :s"), {"s": k})
    assert problem(session) == (Problem.REMOVED, k)


def test_swapped_seqs_are_named(session):
    activity(session)
    a, b = head_seq(session) - 5, head_seq(session) - 2
    session.execute(text("UPDATE audit_entry SET seq = -1 WHERE seq = :a"), {"a": a})
    session.execute(text("UPDATE audit_entry SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
    session.execute(text("UPDATE audit_entry SET seq = :b WHERE seq = -1"), {"b": b})
    assert problem(session) == (Problem.REORDERED, a)


def test_changed_checkpoint_signature_is_named(session):
    activity(session)
    cp = service.checkpoint(session, NODE)
    sig = cp.signature
    forged = ("A" if sig[0] != "A" else "B") + sig[1:]
    session.execute(
        text("UPDATE audit_checkpoint SET signature = :g WHERE seq = :s"),
        {"g": forged, "s": cp.seq},
    )
    assert problem(session) == (Problem.CHECKPOINT_SIGNATURE, cp.seq)


def test_tail_deleted_after_a_checkpoint_is_truncated(session):
    activity(session)
    cp = service.checkpoint(session, NODE)
    activity(session, 1)
    cut = cp.seq - 2
    # A careful attacker also winds the head row back to the new end.
    last = session.get(AuditEntry, cut)
    session.execute(text("DELETE FROM audit_entry WHERE seq > :c"), {"c": cut})
    session.execute(
        text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": cut, "h": last.hash}
    )
    assert problem(session) == (Problem.TRUNCATED, cut + 1)


def test_tail_deleted_without_touching_the_head_is_truncated(session):
    activity(session)
    end = head_seq(session)
    session.execute(text("DELETE FROM audit_entry WHERE seq > :c"), {"c": end - 2})
    assert problem(session) == (Problem.TRUNCATED, end - 1)


def test_rewritten_history_under_a_checkpoint_is_a_mismatch(session):
    activity(session)
    cp = service.checkpoint(session, NODE)
    k = cp.seq - 3
    # The attacker rewrites entry k and recomputes every hash after it, head included.
    entries = list(service.iter_entries(session))
    prev = entries[k - 2].hash
    for e in entries[k - 1 :]:
        e = replace(e, prev_hash=prev, body='{"forged":true}' if e.seq == k else e.body)
        e = replace(e, hash=domain.recompute(e))
        session.execute(
            text("UPDATE audit_entry SET body = :b, prev_hash = :p, hash = :h WHERE seq = :s"),
            {"b": e.body, "p": e.prev_hash, "h": e.hash, "s": e.seq},
        )
        prev = e.hash
    session.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})
    assert problem(session) == (Problem.CHECKPOINT_MISMATCH, cp.seq)


def test_row_inserted_past_the_head_is_named(session):
    activity(session, 1)
    end = head_seq(session)
    last = session.get(AuditEntry, end)
    forged = domain.make_entry(end, last.hash, last.at, "case.event", "case:x", "system", {})
    session.execute(
        AuditEntry.__table__.insert().values(
            seq=forged.seq,
            at=forged.at,
            kind=forged.kind,
            subject=forged.subject,
            actor=forged.actor,
            body=forged.body,
            alg=forged.alg,
            prev_hash=forged.prev_hash,
            hash=forged.hash,
        )
    )
    assert problem(session) == (Problem.HEAD_MISMATCH, end + 1)


def test_verify_streams_in_batches(session):
    activity(session)
    whole = service.verify(session)
    small = service.verify(session, batch=3)
    assert small.ok and small.entries == whole.entries == head_seq(session)
    session.execute(text("UPDATE audit_entry SET kind = 'x' WHERE seq = 7"))
    assert service.verify(session, batch=3).finding.seq == 7
