"""The audit page's counts by kind (issue 14): a counted snapshot moved forward by the
audit job plus the entries after it must always equal a fresh GROUP BY of the chain —
after appends, after a refresh, after more appends, and on PostgreSQL across the seal
after commit. And the page counts with one statement, not one per kind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete, event, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tongban.audit import hook, service, tasks
from tongban.audit.models import (
    AuditCheckpoint,
    AuditCosignature,
    AuditEntry,
    AuditHead,
    AuditKindCount,
)
from tongban.exchange.models import OutboxMessage

from builders import make_admin, sign_in


def _fresh(session: Session) -> dict[str, int]:
    rows = session.execute(select(AuditEntry.kind, func.count()).group_by(AuditEntry.kind))
    return {kind: int(n) for kind, n in rows}


def _record(session: Session, kind: str, n: int) -> None:
    for _ in range(n):
        service.record(session, kind, f"case:{uuid.uuid4()}", "system", {"action": "x"})


def test_counts_equal_a_fresh_group_by_across_refreshes(session):
    _record(session, "case.event", 3)
    _record(session, "licence.event", 2)
    assert service.counts_by_kind(session) == _fresh(session)
    counted = service.refresh_counts(session)
    assert counted >= 5
    assert service.refresh_counts(session) == 0  # nothing new: nothing counted twice
    assert service.counts_by_kind(session) == _fresh(session)
    _record(session, "case.event", 4)
    _record(session, "message.sent", 1)  # a kind the snapshot has not seen
    before = service.counts_by_kind(session)
    assert before == _fresh(session)
    assert service.refresh_counts(session) == 5
    assert service.counts_by_kind(session) == before == _fresh(session)
    head = session.get(AuditHead, hook.HEAD_ID)
    assert head is not None and head.counted_seq == head.seq
    snapshot = {
        k: int(n) for k, n in session.execute(select(AuditKindCount.kind, AuditKindCount.n))
    }
    assert snapshot == _fresh(session)  # the table itself, not only the sum


def test_the_page_counts_in_one_statement(client, session, engine):
    _record(session, "case.event", 3)
    admin = make_admin(session)
    session.commit()
    sign_in(client, admin)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # noqa: ANN001, ANN002
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        page = client.get("/audit")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert page.status_code == 200
    counting = [s for s in statements if "count(" in s.lower() and "audit_entry" in s]
    assert len(counting) == 1, counting
    assert "audit_kind_count" in counting[0]  # the snapshot, plus the entries after it


@pytest.fixture
def pg(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the seal after commit is PostgreSQL's")


@pytest.fixture
def restore(committing_factory: sessionmaker[Session]) -> Iterator[int]:
    """Put back the chain, the head and the counted snapshot as they were."""
    with committing_factory() as s:
        start = service.head(s)
        h = s.execute(select(AuditHead.counted_seq).where(AuditHead.id == hook.HEAD_ID))
        counted = int(h.scalar_one())
        counts = {k: int(n) for k, n in s.execute(select(AuditKindCount.kind, AuditKindCount.n))}
        s.rollback()
    assert start is not None
    yield start.seq
    # The background seals of the test's commits first: one still lingering would
    # otherwise seal its rows onto the head put back below (the same seq and hash).
    assert hook.drain(30)
    with committing_factory() as s:
        # A checkpoint the test committed (the job's, of entries other tests left
        # before it) covers entries removed here: it goes with them.
        s.execute(delete(AuditCosignature).where(AuditCosignature.seq > start.seq))
        s.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > start.seq))
        s.execute(delete(AuditEntry).where(AuditEntry.seq > start.seq))
        s.execute(delete(OutboxMessage).where(OutboxMessage.type == "audit.count-test"))
        s.execute(text("DELETE FROM audit_pending"))
        s.execute(delete(AuditKindCount))
        for kind, n in counts.items():
            s.add(AuditKindCount(kind=kind, n=n))
        s.execute(
            update(AuditHead)
            .where(AuditHead.id == hook.HEAD_ID)
            .values(seq=start.seq, hash=start.hash, counted_seq=counted)
        )
        s.commit()


def _message(n: int) -> OutboxMessage:
    return OutboxMessage(
        type="audit.count-test",
        source_jurisdiction="310000",
        target_jurisdiction="320000",
        payload={"n": n},
        status="delivered",
    )


def test_counts_stay_exact_across_the_seal_and_the_job(pg, committing_factory, restore, settings):
    for round_ in range(3):
        with committing_factory() as s:  # sealed after its commit
            s.add_all([_message(round_ * 10 + i) for i in range(round_ + 2)])
            if round_ == 0:  # an entry that is not witnessing traffic: the job signs
                service.record(s, "test.count", "thing:1", "system", {"n": 0})
            s.commit()
        with committing_factory() as s:
            assert s.scalar(text("SELECT count(*) FROM audit_pending")) == 0
            assert service.counts_by_kind(s) == _fresh(s)
            s.rollback()
        due = settings.model_copy(update={"audit_checkpoint_seconds": 0 if round_ == 0 else 3600})
        signed = tasks.make_checkpoint(committing_factory, due)  # the job refreshes
        # Signed in the first round (committed: the restore takes it away with the
        # entries it covers), not again within the interval.
        assert (signed is not None) == (round_ == 0)
        with committing_factory() as s:
            head = s.get(AuditHead, hook.HEAD_ID)
            assert head is not None and head.counted_seq == head.seq
            assert service.counts_by_kind(s) == _fresh(s)
            s.rollback()
