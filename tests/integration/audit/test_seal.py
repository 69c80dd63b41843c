"""Sealing after commit (issue 14, PostgreSQL): a writer's staged entries commit with
its transaction and are chained after the commit in one statement of their own, by the
process's background sealer (the writer does not wait for it), so no writer's
transaction holds the chain's head. The chain keeps its guarantees: every entry present
once, in one verifying chain, nothing left staged, nothing of a rolled-back transaction,
and a reader sees every committed entry even before the background seal ran.

These tests commit for real, so they put the shared database back as they found it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tongban.audit import hook, service
from tongban.audit.models import AuditCheckpoint, AuditCosignature, AuditEntry, AuditHead
from tongban.exchange.models import OutboxMessage


@pytest.fixture
def pg(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite chains before the commit (its writers are serialised anyway)")


@pytest.fixture
def restore(committing_factory: sessionmaker[Session]) -> Iterator[int]:
    """The head's seq before the test; afterwards its entries, messages and head undone."""
    with committing_factory() as s:
        start = service.head(s)
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
        s.execute(delete(OutboxMessage).where(OutboxMessage.type == "audit.seal-test"))
        s.execute(text("DELETE FROM audit_pending"))
        s.execute(
            update(AuditHead)
            .where(AuditHead.id == hook.HEAD_ID)
            .values(seq=start.seq, hash=start.hash)
        )
        s.commit()


def _message(n: int) -> OutboxMessage:
    return OutboxMessage(
        type="audit.seal-test",
        source_jurisdiction="310000",
        target_jurisdiction="320000",
        payload={"n": n},
        status="delivered",
    )


def _pending(factory: sessionmaker[Session]) -> int:
    """Staged rows, as a Session reads them (which seals what is committed first)."""
    with factory() as s:
        return int(s.scalar(text("SELECT count(*) FROM audit_pending")) or 0)


def _staged(engine: Engine) -> int:
    """Staged rows as they are, read on a bare connection (no seal before)."""
    with engine.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM audit_pending")).scalar_one())


def test_a_commit_is_sealed_right_after_it(pg, engine, committing_factory, restore):
    with committing_factory() as s:
        s.add(_message(1))
        s.add(_message(2))
        s.commit()
    # Sealed by the background sealer without anyone reading: nothing staged.
    assert hook.drain(30)
    assert _staged(engine) == 0
    with committing_factory() as s:
        entries = list(service.iter_entries(s, restore))
        assert [e.kind for e in entries] == ["message.sent", "message.sent"]
        assert [e.seq for e in entries] == [restore + 1, restore + 2]
        assert service.verify(s).ok
        s.rollback()


def test_the_writers_transaction_never_holds_the_head(pg, engine, committing_factory, restore):
    """While another transaction holds the head row, a writer's commit goes through and
    returns (its rows are there for everyone); only the seal waits, in the background,
    and completes once the head is free."""
    holder = committing_factory()
    try:
        holder.execute(select(AuditHead).where(AuditHead.id == hook.HEAD_ID).with_for_update())
        committed = threading.Event()
        failure: list[BaseException] = []

        def writer() -> None:
            try:
                with committing_factory() as w:
                    w.execute(text("SET LOCAL lock_timeout = '10s'"))
                    w.add(_message(1))
                    w.flush()
                    w.commit()  # the seal after it waits for the holder
                committed.set()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failure.append(exc)

        t = threading.Thread(target=writer)
        t.start()
        # The writer's row is committed although the head is held throughout.
        for _ in range(200):
            with committing_factory() as s:
                n = s.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.type == "audit.seal-test")
                )
            if n == 1:
                break
            threading.Event().wait(0.05)
        assert n == 1, "the writer's commit waited for the head"
        t.join(timeout=30)  # the writer returned although the head is still held
        assert failure == [] and committed.is_set(), failure
        assert not hook.drain(0.5)  # its seal waits for the head
        assert _staged(engine) == 1
        holder.rollback()
        assert hook.drain(30)
    finally:
        holder.close()
    assert _staged(engine) == 0
    with committing_factory() as s:
        assert [e.kind for e in service.iter_entries(s, restore)] == ["message.sent"]
        assert service.verify(s).ok
        s.rollback()


def test_a_failed_seal_leaves_the_rows_staged_for_the_next(
    pg, engine, committing_factory, restore, monkeypatch
):
    def broken(_engine: Engine, *_options: str) -> int:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(hook, "seal", broken)
    with committing_factory() as s:
        s.add(_message(1))
        s.commit()  # committed all the same; the entry stays staged
    assert hook.drain(30)
    assert _staged(engine) == 1
    assert _pending(committing_factory) == 1  # (a reader's seal failed too)
    with committing_factory() as s:
        assert service.head(s).seq == restore  # not part of the chain yet
        s.rollback()
    monkeypatch.undo()
    with committing_factory() as s:
        s.add(_message(2))
        s.commit()  # its seal takes the left-over row first
    assert hook.drain(30)
    assert _staged(engine) == 0
    with committing_factory() as s:
        entries = list(service.iter_entries(s, restore))
        assert [e.subject.startswith("message:") for e in entries] == [True, True]
        ids = [e.subject for e in entries]
        first = s.scalar(
            select(OutboxMessage.id)
            .where(OutboxMessage.type == "audit.seal-test")
            .where(OutboxMessage.payload["n"].as_integer() == 1)
        )
        assert ids[0] == f"message:{first}"
        assert service.verify(s).ok
        s.rollback()


def test_concurrent_sealers_make_one_chain(pg, engine, committing_factory, restore):
    """Eight writers commit at once; their seals race for the head and each entry is
    chained exactly once, in one verifying chain."""
    threads, per_thread = 8, 10
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            for i in range(per_thread):
                with committing_factory() as s:
                    s.add(_message(n * 100 + i))
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert errors == []
    assert hook.drain(60)
    assert _staged(engine) == 0
    with committing_factory() as s:
        entries = list(service.iter_entries(s, restore))
        assert len(entries) == threads * per_thread
        assert len({e.subject for e in entries}) == threads * per_thread
        assert [e.seq for e in entries] == list(range(restore + 1, restore + 81))
        ats = [e.at for e in entries]
        assert ats == sorted(ats)  # `at` never goes backwards along the chain
        assert service.verify(s).ok
        s.rollback()


def test_a_rolled_back_writer_is_not_sealed(pg, committing_factory, restore):
    with committing_factory() as s:
        s.add(_message(1))
        s.flush()
        s.rollback()
    with committing_factory() as s:
        s.add(_message(2))
        s.commit()
    with committing_factory() as s:
        entries = list(service.iter_entries(s, restore))
        assert len(entries) == 1 and service.verify(s).ok
        s.rollback()
    assert _pending(committing_factory) == 0


def test_chaining_before_commit_is_kept_behind_the_switch(
    pg, committing_factory, restore, monkeypatch
):
    """SEAL_AFTER_COMMIT off: the transaction chains its rows itself before COMMIT (the
    path of issue 11, which the benchmark compares), with the same chain."""
    monkeypatch.setattr(hook, "SEAL_AFTER_COMMIT", False)
    sealed: list[int] = []
    monkeypatch.setattr(hook, "seal", lambda *_a: sealed.append(1) or 0)
    with committing_factory() as s:
        s.add(_message(1))
        s.commit()
    assert sealed == [] and _pending(committing_factory) == 0
    with committing_factory() as s:
        assert len(list(service.iter_entries(s, restore))) == 1
        assert service.verify(s).ok
        s.rollback()


def test_a_reader_sees_what_no_background_seal_took(
    pg, engine, committing_factory, restore, monkeypatch
):
    """A process that died between its commit and its seal (here: its sealer never woke)
    leaves committed staged rows; a reader of the chain seals them before it reads."""
    monkeypatch.setattr(hook.sealer.Sealer, "wake", lambda self: None)
    with committing_factory() as s:
        s.add(_message(1))
        s.commit()
    assert _staged(engine) == 1  # committed, not sealed
    with committing_factory() as s:
        entries = list(service.iter_entries(s, restore))
        assert [e.kind for e in entries] == ["message.sent"]
        assert service.verify(s).ok
        s.rollback()
    assert _staged(engine) == 0


def test_sealing_in_the_writers_thread_is_kept_behind_the_switch(
    pg, engine, committing_factory, restore, monkeypatch
):
    """SEAL_IN_BACKGROUND off: the writer seals right after its commit, before commit()
    returns (session 7's path, which a benchmark compares)."""
    monkeypatch.setattr(hook, "SEAL_IN_BACKGROUND", False)
    with committing_factory() as s:
        s.add(_message(1))
        s.commit()
    assert _staged(engine) == 0  # no drain, no reader: sealed by the writer
    with committing_factory() as s:
        assert [e.kind for e in service.iter_entries(s, restore)] == ["message.sent"]
        s.rollback()


def test_a_reader_seals_only_when_something_committed_is_staged(
    pg, engine, committing_factory, restore, monkeypatch
):
    """A reader with nothing staged to seal reads the chain without the seal (no side
    connection: a short command's second connection); one that finds a committed staged
    row (its writer's seal never ran) seals it before reading, as before."""
    assert hook.drain(30)  # no seal of an earlier test still under way
    seals: list[str] = []
    real = hook.seal

    def counted(e: Engine, *options: str) -> int:
        seals.append("seal")
        return real(e, *options)

    monkeypatch.setattr(hook, "seal", counted)
    monkeypatch.setattr(hook.sealer.Sealer, "wake", lambda self: None)
    assert _staged(engine) == 0
    with committing_factory() as s:
        assert service.head(s).seq == restore
        assert list(service.iter_entries(s, restore)) == []
        s.rollback()
    assert seals == []
    with committing_factory() as s:
        s.add(_message(1))
        s.commit()  # committed, not sealed (no background seal)
    assert _staged(engine) == 1
    with committing_factory() as s:
        assert service.head(s).seq == restore + 1
        assert [e.kind for e in service.iter_entries(s, restore)] == ["message.sent"]
        assert service.verify(s).ok
        s.rollback()
    assert seals and _staged(engine) == 0
