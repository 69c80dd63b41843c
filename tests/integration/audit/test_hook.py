"""How a context opts in: the declarative attributes and the `__audit__` method, on
classes of their own (a separate metadata, created inside the test's transaction)."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import String, Uuid, event, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tongban.audit import domain, service
from tongban.db import new_id


class _Base(DeclarativeBase):
    pass


class Declared(_Base):
    __tablename__ = "audit_test_declared"
    __audit_kind__ = "test.declared"
    __audit_subject__ = "licence_id"
    __audit_actor__ = ("account", "by")
    __audit_fields__ = ("status",)
    __audit_digest__ = ("holder",)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    licence_id: Mapped[str] = mapped_column(String(40))
    by: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10), default="issued")
    holder: Mapped[str] = mapped_column(String(40))


class Minimal(_Base):
    __tablename__ = "audit_test_minimal"
    __audit_kind__ = "test.minimal"
    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    secret: Mapped[str] = mapped_column(String(40))


class Custom(_Base):
    __tablename__ = "audit_test_custom"
    __audit_kind__ = "test.custom"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))

    def __audit__(self) -> tuple[str, str, dict[str, object]]:
        return f"thing:{self.id}", "node:n1", {"initial": self.name[:1]}


class NotAudited(_Base):
    __tablename__ = "audit_test_plain"
    id: Mapped[int] = mapped_column(primary_key=True)


def test_opting_in_declaratively_or_with_a_method(session, connection):
    _Base.metadata.create_all(connection)
    before = service.head(session).seq
    session.add(Declared(licence_id="L1", by=None, holder="张三"))
    session.add(Declared(licence_id="L2", by="u9", holder="李四"))
    session.add(Minimal(code="c1", secret="do-not-copy"))
    session.add(Custom(id=7, name="王五"))
    session.add(NotAudited(id=1))
    session.flush()
    entries = list(service.iter_entries(session, before))
    by_kind = {}
    for e in entries:
        by_kind.setdefault(e.kind, []).append(e)
    assert sorted(by_kind) == ["test.custom", "test.declared", "test.minimal"]

    first, second = by_kind["test.declared"]
    assert (first.subject, first.actor) == ("licence:L1", "system")
    assert (second.subject, second.actor) == ("licence:L2", "account:u9")
    body = json.loads(first.body)
    # The default for a Python-side default column is filled in before the entry is made.
    assert body["status"] == "issued" and uuid.UUID(body["id"])
    assert body["holder_digest"] == domain.field_digest("sha-256", "张三")
    assert "张三" not in first.body

    (minimal,) = by_kind["test.minimal"]
    assert minimal.subject == "audit_test_minimal:c1" and json.loads(minimal.body) == {"code": "c1"}
    (custom,) = by_kind["test.custom"]
    assert (custom.subject, custom.actor, custom.body) == ("thing:7", "node:n1", '{"initial":"王"}')
    assert service.verify(session).ok


def test_core_inserts_are_audited_as_a_flush_s(session, connection, engine):
    """Issue 14: a Core insert into an audited table, through the Session, gets the
    entries a flush would give its rows; with a conflict clause only the rows it
    returns by key (the others were there already); a flush stages its entries in one
    statement."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from tongban.exchange.models import OutboxMessage

    table = OutboxMessage.__table__
    ids = [uuid.uuid4(), uuid.uuid4()]

    def row(i: uuid.UUID) -> dict[str, object]:
        return {
            "id": i,
            "type": "audit.test",
            "source_jurisdiction": "310000",
            "target_jurisdiction": "320000",
            "payload": {"n": str(i)},
            "status": "delivered",
        }

    seen: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for n in range(3):
            session.add(OutboxMessage(**{**row(uuid.uuid4()), "payload": {"k": n}}))
        session.flush()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in seen if s.startswith("INSERT INTO audit_pending")]) == 1, seen

    session.execute(insert(table).values([row(ids[0])]))
    upsert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    again = (
        upsert(table)
        .values([row(ids[0]), row(ids[1])])
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(table.c.id)
    )
    assert set(session.scalars(again)) == {ids[1]}  # the caller still gets its rows
    for i in ids:
        (entry,) = service.about(session, f"message:{i}")
        assert entry.kind == "message.sent"
        body = json.loads(entry.body)
        assert body["type"] == "audit.test" and body["id"] == str(i)
        assert body["payload_digest"] == domain.field_digest("sha-256", {"n": str(i)})
    blind = upsert(table).values([row(uuid.uuid4())]).on_conflict_do_nothing(index_elements=["id"])
    with pytest.raises(TypeError):  # which rows it wrote is unknown: refused
        session.execute(blind)
    assert service.verify(session).ok
