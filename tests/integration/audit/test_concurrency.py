"""Appenders in separate connections and threads, each committing its own transactions,
produce one valid chain (no fork, no lost entry); a real rollback leaves nothing.

These tests commit for real (outside the per-test rolled-back transaction), so they
put the shared database back as they found it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tongban.audit import hook, service
from tongban.audit.models import AuditCheckpoint, AuditCosignature, AuditEntry, AuditHead
from tongban.exchange.models import OutboxMessage

THREADS = 4
PER_THREAD = 12


@pytest.fixture
def restore(committing_factory: sessionmaker[Session]) -> Iterator[None]:
    """Undo what the test committed: its entries, its messages, the head row."""
    with committing_factory() as s:
        start = service.head(s)
        s.rollback()
    assert start is not None
    yield
    # The background seals of the test's commits first: one still lingering would
    # otherwise seal its rows onto the head put back below (the same seq and hash).
    assert hook.drain(30)
    with committing_factory() as s:
        # A checkpoint the test committed (the job's, of entries other tests left
        # before it) covers entries removed here: it goes with them.
        s.execute(delete(AuditCosignature).where(AuditCosignature.seq > start.seq))
        s.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > start.seq))
        s.execute(delete(AuditEntry).where(AuditEntry.seq > start.seq))
        s.execute(delete(OutboxMessage).where(OutboxMessage.type == "audit.test"))
        s.execute(text("DELETE FROM audit_pending"))  # a test's stray staged row
        s.execute(
            update(AuditHead)
            .where(AuditHead.id == hook.HEAD_ID)
            .values(seq=start.seq, hash=start.hash)
        )
        s.commit()


def test_concurrent_appenders_make_one_valid_chain(committing_factory, restore):
    with committing_factory() as s:
        start = service.head(s).seq
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            for i in range(PER_THREAD):
                with committing_factory() as s:
                    if i % 2:
                        service.record(s, "test.explicit", f"thread:{n}", "system", {"i": i})
                    else:  # through the write-path hook
                        s.add(
                            OutboxMessage(
                                type="audit.test",
                                source_jurisdiction="310000",
                                target_jurisdiction="320000",
                                payload={"n": n, "i": i},
                                status="delivered",
                            )
                        )
                        s.flush()
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    with committing_factory() as s:
        added = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.seq > start))
        assert added == THREADS * PER_THREAD
        assert service.head(s).seq == start + THREADS * PER_THREAD
        report = service.verify(s)
        assert report.ok, report.finding
        kinds = [e.kind for e in service.iter_entries(s, start)]
        assert kinds.count("message.sent") == THREADS * PER_THREAD // 2
        s.rollback()


def test_a_rolled_back_transaction_leaves_neither_row_nor_entry(committing_factory, restore):
    with committing_factory() as s:
        before = service.head(s)
        s.add(
            OutboxMessage(
                type="audit.test",
                source_jurisdiction="310000",
                target_jurisdiction="320000",
                payload={},
                status="delivered",
            )
        )
        s.flush()
        assert service.head(s).seq == before.seq + 1
        s.rollback()
    with committing_factory() as s:
        assert service.head(s) == before
        n = s.scalar(text("SELECT count(*) FROM outbox_message WHERE type = 'audit.test'"))
        assert n == 0
        past = select(func.count()).select_from(AuditEntry).where(AuditEntry.seq > before.seq)
        assert s.scalar(past) == 0


def _message(n: int) -> OutboxMessage:
    return OutboxMessage(
        type="audit.test",
        source_jurisdiction="310000",
        target_jurisdiction="320000",
        payload={"n": n},
        status="delivered",
    )


def test_an_open_writer_does_not_hold_up_another_writers_commit(
    engine, committing_factory, restore
):
    """Issue 11: the chain no longer serialises every write behind one row lock for the
    whole transaction. Writer A makes an audited insert and keeps its transaction open;
    writer B makes one and commits meanwhile, at once (before: B waited on A's lock of the
    head row until A ended). Then A commits; both entries are in the chain, in commit
    order, and it verifies. (SQLite serialises whole write transactions by itself.)"""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers are serialised by BEGIN IMMEDIATE")
    with committing_factory() as s:
        start = service.head(s).seq
    a = committing_factory()
    try:
        a.add(_message(1))
        a.flush()  # A's entry is staged; A stays open
        done = threading.Event()
        failure: list[BaseException] = []

        def writer_b() -> None:
            try:
                with committing_factory() as b:
                    b.execute(text("SET LOCAL lock_timeout = '5s'"))
                    b.add(_message(2))
                    b.flush()
                    b.commit()
                done.set()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failure.append(exc)

        t = threading.Thread(target=writer_b)
        t.start()
        t.join(timeout=30)
        assert failure == [] and done.is_set(), failure
        a.commit()
    finally:
        a.close()
    with committing_factory() as s:
        entries = list(service.iter_entries(s, start))
        assert [e.kind for e in entries] == [
            "message.sent",
            "message.sent",
        ]
        assert service.verify(s).ok
        assert s.scalar(text("SELECT count(*) FROM audit_pending")) == 0
        s.rollback()


def test_staged_entries_left_committed_are_chained_by_the_next_checkpoint(
    committing_factory, restore
):
    """A staged row that got committed without being chained (a writer that bypassed the
    Session's commit, or died before its seal) is not lost: the next checkpoint chains it
    first — or, where entries are sealed in the background (PostgreSQL), the first
    reader of the chain seals it before reading. Either way the chain verifies."""
    from tongban.audit import witness  # noqa: F401 - checkpoint publishes through it

    with committing_factory() as s:
        start = service.head(s).seq
        s.connection().execute(
            text(
                "INSERT INTO audit_pending (kind, subject, actor, body, alg) "
                "VALUES ('test.stray', 'thing:1', 'system', '{}', 'sha-256')"
            )
        )
        s.connection().commit()  # the Session's before_commit never ran
    with committing_factory() as s:
        sealed_by_reader = hook.SEAL_IN_BACKGROUND and s.get_bind().dialect.name == "postgresql"
        assert service.head(s).seq == start + int(sealed_by_reader)
        assert service.verify(s).ok
        service.checkpoint(s, "node-stray")
        assert [e.kind for e in service.iter_entries(s, start)] == ["test.stray"]
        assert s.scalar(text("SELECT count(*) FROM audit_pending")) == 0
        s.rollback()
