"""Rows written by a Core INSERT on the Session's connection, their audit entries held
for the next staging statement (`hook.buffer_rows`, issue 14; announced by
`events.RowsWritten`): the exchange's `send_written`, as `kernel.history.insert_new` for
a record's first event. Each row gets the entry a flush would give it, exactly once,
chained in the writer's transaction, and a rollback (savepoints included) never leaves
a row without its entry or an entry without its row."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import event, func, select

from tongban.audit import domain, hook, service
from tongban.audit.models import AuditPending
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage


def _sent(session, n: int = 0):  # type: ignore[no-untyped-def]
    return exchange.send_written(session, "audit.test", "310000", "320000", {"n": n})


def _orm(session, n: int) -> OutboxMessage:  # type: ignore[no-untyped-def]
    return exchange.send(session, "audit.test", "310000", "320000", {"n": n})


def _entries(session, *ids: uuid.UUID) -> list[tuple[str, dict[str, object]]]:  # type: ignore[no-untyped-def]
    out = []
    for i in ids:
        for e in service.about(session, f"message:{i}"):
            out.append((e.subject, json.loads(e.body)))
    return out


@pytest.fixture
def statements(engine):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def executed(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", executed)
    yield seen
    event.remove(engine, "before_cursor_execute", executed)


def _staging(statements: list[str]) -> int:
    return sum(s.startswith("INSERT INTO audit_pending") for s in statements)


def test_the_next_flush_stages_them_first_in_its_one_statement(session, statements):  # type: ignore[no-untyped-def]
    core = _sent(session, 1)
    assert session.get(OutboxMessage, core) is not None  # written at once, not at a flush
    assert _staging(statements) == 0  # its entry waits for the flush
    orm = _orm(session, 2)
    session.flush()
    assert _staging(statements) == 1
    chained = [e for e in service.iter_entries(session, 0) if e.kind == "message.sent"]
    assert [e.subject for e in chained[-2:]] == [f"message:{core}", f"message:{orm.id}"]
    # The same entry a flushed OutboxMessage gets.
    (_, body), (_, orm_body) = _entries(session, core, orm.id)
    assert body == {
        "id": str(core),
        "type": "audit.test",
        "source_jurisdiction": "310000",
        "target_jurisdiction": "320000",
        "payload_digest": domain.field_digest("sha-256", {"n": 1}),
    }
    assert set(body) == set(orm_body)
    assert service.verify(session).ok


def test_with_no_flush_after_them_the_commit_stages_them(session, statements):  # type: ignore[no-untyped-def]
    session.flush()
    core = _sent(session)
    session.commit()
    assert _staging(statements) == 1
    assert len(_entries(session, core)) == 1
    assert service.verify(session).ok


def test_a_read_of_the_chain_in_the_transaction_sees_them(session):  # type: ignore[no-untyped-def]
    core = _sent(session)
    assert len(_entries(session, core)) == 1  # settled before the read
    session.flush()
    session.commit()
    assert len(_entries(session, core)) == 1  # chained once
    assert service.verify(session).ok


def test_a_rollback_takes_rows_and_entries_together(session):  # type: ignore[no-untyped-def]
    session.flush()
    staged = session.scalar(select(func.count()).select_from(AuditPending))
    core = _sent(session)
    session.rollback()
    assert session.get(OutboxMessage, core) is None
    assert session.scalar(select(func.count()).select_from(AuditPending)) == staged
    assert not session.info.get(hook._AHEAD)
    session.commit()
    assert _entries(session, core) == []


def test_inside_a_savepoint_they_are_staged_at_once(session, statements):  # type: ignore[no-untyped-def]
    session.flush()
    staged = session.scalar(select(func.count()).select_from(AuditPending))
    kept = _sent(session, 0)
    with pytest.raises(RuntimeError), session.begin_nested():
        gone = _sent(session, 1)
        assert _staging(statements) == 1  # its own statement: row and entry in the savepoint
        raise RuntimeError("taken back")
    assert session.get(OutboxMessage, gone) is None
    assert session.scalar(select(func.count()).select_from(AuditPending)) == staged
    session.commit()
    assert len(_entries(session, kept)) == 1 and _entries(session, gone) == []
    assert service.verify(session).ok


def test_staged_in_a_savepoint_that_rolls_back_they_wait_again(session):  # type: ignore[no-untyped-def]
    """A row written outside a savepoint whose entry a flush inside it staged: the
    savepoint's rollback takes the staging back but not the row, so the entry is held
    again and chained once, at the commit."""
    session.flush()
    core = _sent(session, 1)
    with pytest.raises(RuntimeError), session.begin_nested():  # noqa: PT012
        inner = _orm(session, 2)
        session.flush()  # stages the held entry and the inner row's
        assert not session.info.get(hook._AHEAD)
        raise RuntimeError("taken back")
    assert session.get(OutboxMessage, inner.id) is None
    assert session.get(OutboxMessage, core) is not None
    assert session.info.get(hook._AHEAD)  # held again
    with session.begin_nested():  # a savepoint that is released keeps its staging
        _orm(session, 3)
        session.flush()
    session.commit()
    assert len(_entries(session, core)) == 1
    assert _entries(session, inner.id) == []
    assert service.verify(session).ok
