"""kernel.replication on a record type declared only here (a "permit"), on both
databases: a snapshot creates the copy with its events, changes are applied in order
(the next one appended, a held one ignored, a later one deferred with OutOfOrder), the
sender's right is checked against the record, messages are built at commit from the
record as the use case left it and always go through the outbox, and a published state
is applied only when newer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Column, ForeignKey, MetaData, String, Table, Uuid, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from tongban.exchange import schema as s
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.kernel import history, replication
from tongban.kernel.history import EventRow, HasHistory, Versioned


class _Base(DeclarativeBase):
    metadata = MetaData()


# The account table lives in the node's schema; declared here only as the events'
# foreign-key target (never created by this test).
Table("account", _Base.metadata, Column("id", Uuid, primary_key=True))


class Permit(_Base, HasHistory["PermitEvent"], Versioned):
    __tablename__ = "test_permit"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    number: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(String(6))
    state: Mapped[str] = mapped_column(String(24), default="open")
    note: Mapped[str] = mapped_column(String(80), default="")
    copy: Mapped[bool] = mapped_column(default=False)
    events: Mapped[list[PermitEvent]] = relationship(
        back_populates="permit", order_by="PermitEvent.seq", cascade="all, delete-orphan"
    )


class PermitEvent(_Base, EventRow):
    __tablename__ = "test_permit_event"
    __history_key__ = "permit_id"
    permit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("test_permit.id"), index=True)
    permit: Mapped[Permit] = relationship(back_populates="events")


class Snap(s.Payload):
    id: s.Uuid
    number: str
    jurisdiction: s.RegionCode
    state: str
    note: str
    events: list[replication.EventIn]


class Change(s.Payload):
    id: s.Uuid
    number: str
    seq: s.Seq
    event: replication.EventIn
    state: str
    note: str


def _find(session: Session, p: Mapping[str, Any]) -> Permit | None:
    return session.get(Permit, uuid.UUID(str(p["id"])))


def _create(session: Session, p: Mapping[str, Any]) -> Permit:
    permit = Permit(
        id=uuid.UUID(str(p["id"])),
        number=p["number"],
        jurisdiction=p["jurisdiction"],
        state=p["state"],
        note=p["note"],
        copy=True,
    )
    session.add(permit)
    return permit


def _follow(session: Session, permit: Permit, p: Mapping[str, Any]) -> None:
    permit.state, permit.note = p["state"], p["note"]


PERMITS: replication.Copies[Permit] = replication.Copies(
    noun="许可",
    snapshot_type="test.permit.shared",
    snapshot_schema=Snap,
    change_type="test.permit.changed",
    change_schema=Change,
    find=_find,
    create=_create,
    follow=_follow,
    snapshot=lambda _s, p: {
        "id": str(p.id),
        "number": p.number,
        "jurisdiction": p.jurisdiction,
        "state": p.state,
        "note": p.note,
    },
    change=lambda _s, p, _ev: {
        "id": str(p.id),
        "number": p.number,
        "state": p.state,
        "note": p.note,
    },
    shared_by=lambda p: p.jurisdiction,
    changed_by=lambda permit, _p: permit.jurisdiction,
    label=lambda p: str(p["number"]),
)


@pytest.fixture
def db(session: Session) -> Iterator[Session]:
    _Base.metadata.create_all(
        session.connection(), tables=[Permit.__table__, PermitEvent.__table__]
    )  # in the test's transaction: rolled back with it
    yield session


def _origin(session: Session, note: str = "") -> Permit:
    permit = Permit(number="P-1", jurisdiction="310000", note=note)
    session.add(permit)
    session.flush()
    history.record(session, permit, "open", None, None, "open")
    return permit


def _sender(*served: str, source: str = "310000", target: str = "320000") -> exchange.Sender:
    return exchange.Sender("node-x", frozenset(served), source, target)


def _outbox(session: Session) -> list[OutboxMessage]:
    """This test's messages (the database may hold other tests' committed ones)."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.type.like("test.%"))
            .order_by(OutboxMessage.created_at)
        )
    )


def test_changes_are_sent_at_commit_with_the_fields_as_the_use_case_left_them(db: Session):
    permit = _origin(db)
    replication.share(db, PERMITS, permit, None, "310000", ["320000", "340000"])
    ev = history.record(db, permit, "close", None, "open", "closed", "办结")
    replication.share(db, PERMITS, permit, ev, "310000", ["320000", "320000"])
    permit.state, permit.note = "closed", "set after the event"  # after record()
    assert _outbox(db) == []  # nothing until commit
    db.commit()

    sent = _outbox(db)
    assert [(m.type, m.target_jurisdiction) for m in sent] == [
        ("test.permit.shared", "320000"),
        ("test.permit.shared", "340000"),
        ("test.permit.changed", "320000"),  # one per distinct target
    ]
    snap, change = sent[0].payload, sent[2].payload
    assert [e["seq"] for e in snap["events"]] == [1, 2]
    assert change["seq"] == 2 and change["event"]["action"] == "close"
    assert change["note"] == "set after the event" and change["state"] == "closed"
    Snap.model_validate_json(json.dumps(snap))  # what is sent parses
    Change.model_validate_json(json.dumps(change))


def test_a_rolled_back_change_sends_nothing(db: Session):
    permit = _origin(db)
    db.commit()
    with db.begin_nested() as sp:
        ev = history.record(db, permit, "close", None, "open", "closed")
        replication.share(db, PERMITS, permit, ev, "310000", ["320000"])
        sp.rollback()
    db.commit()
    assert _outbox(db) == []


def _snapshot_of(permit: Permit, db: Session) -> dict[str, Any]:
    return PERMITS.snapshot_payload(db, permit)


def test_a_snapshot_creates_the_copy_with_its_events_and_changes_follow_in_order(db: Session):
    origin = _origin(db)
    ev2 = history.record(db, origin, "amend", None, "open", "open", "改")
    origin.note = "two"
    change2 = PERMITS.change_payload(db, origin, ev2, None)
    ev3 = history.record(db, origin, "close", None, "open", "closed")
    origin.state, origin.note = "closed", "three"
    change3 = PERMITS.change_payload(db, origin, ev3, None)
    snap = {**_snapshot_of(origin, db), "events": [replication.event_dict(origin.events[0])]}
    snap["state"], snap["note"] = "open", ""
    # Another node's copy: same id, made from the snapshot taken at event 1.
    db.delete(origin)
    db.flush()

    copy, created = PERMITS.receive_snapshot(db, snap)
    assert created and copy.copy and copy.event_seq == 1 and [e.seq for e in copy.events] == [1]
    again, created_again = PERMITS.receive_snapshot(db, snap)
    assert again is copy and not created_again  # a second snapshot adds nothing

    with pytest.raises(exchange.OutOfOrder, match="尚缺第 2 条"):
        PERMITS.receive_change(db, change3)  # event 2 has not arrived
    assert copy.event_seq == 1 and copy.state == "open"

    assert PERMITS.receive_change(db, change2) is copy
    assert (copy.event_seq, copy.note, copy.state) == (2, "two", "open")
    assert PERMITS.receive_change(db, change2) is None  # held already: nothing changes
    assert PERMITS.receive_change(db, change3) is copy
    assert (copy.event_seq, copy.note, copy.state) == (3, "three", "closed")
    assert [e.action for e in copy.events] == ["open", "amend", "close"]
    assert all(e.actor_id is None for e in copy.events)


def test_a_change_for_a_record_not_here_is_deferred(db: Session):
    change = {"id": str(uuid.uuid4()), "number": "P-9", "seq": 1}
    with pytest.raises(exchange.OutOfOrder, match="尚未共享"):
        PERMITS.receive_change(db, change)


def test_on_one_node_the_record_is_its_own_copy_and_nothing_changes(db: Session):
    origin = _origin(db)
    ev = history.record(db, origin, "close", None, "open", "closed")
    payload = PERMITS.change_payload(db, origin, ev, None)
    version = origin.version
    assert PERMITS.receive_change(db, payload) is None
    assert PERMITS.receive_snapshot(db, _snapshot_of(origin, db)) == (origin, False)
    assert origin.version == version and origin.event_seq == 2


def test_the_senders_right_is_checked_against_the_record(db: Session):
    origin = _origin(db)
    snap = Snap.model_validate_json(json.dumps(_snapshot_of(origin, db)))
    PERMITS.authorise_snapshot(db, snap, _sender("310000"))
    with pytest.raises(exchange.Refused) as refused:
        PERMITS.authorise_snapshot(db, snap, _sender("320000", source="320000"))
    assert refused.value.reason == "not-allowed"

    ev = history.record(db, origin, "close", None, "open", "closed")
    change = Change.model_validate_json(json.dumps(PERMITS.change_payload(db, origin, ev, None)))
    PERMITS.authorise_change(db, change, _sender("310000"))
    # A node serving another jurisdiction may not move 310000's permit, whatever the
    # envelope says.
    with pytest.raises(exchange.Refused) as refused:
        PERMITS.authorise_change(db, change, _sender("320000", source="320000"))
    assert refused.value.reason == "not-allowed"


class _State(BaseModel):
    jurisdiction: str
    seq: int | None = None


def test_a_published_state_is_applied_only_when_newer(db: Session):
    keys = replication.Published("test.keys", scope=lambda p: f"test.keys:{p['jurisdiction']}")
    assert keys.publish(db, "310000", ["320000", "340000"], {"jurisdiction": "310000"}) == 2
    assert keys.publish(db, "310000", ["320000"], {"jurisdiction": "310000"}) == 1
    first, _, second = _outbox(db)
    assert (first.payload["seq"], second.payload["seq"]) == (1, 2)

    assert keys.newer(db, second.payload)  # 2 arrives first
    assert not keys.newer(db, first.payload)  # 1, late: older than what is held
    assert not keys.newer(db, second.payload)  # replayed
    assert keys.newer(db, {"jurisdiction": "310000"})  # version 1: no sequence, applied
    assert keys.newer(db, {"jurisdiction": "340000", "seq": 1})  # another record's own order


def test_a_state_changed_several_times_in_a_transaction_is_published_once_at_commit(
    db: Session,
):
    keys = replication.Published("test.keys", scope=lambda p: f"k:{p['jurisdiction']}")
    lists = replication.Published("test.list", scope=lambda p: f"l:{p['jurisdiction']}")
    built: list[str] = []

    def build(kind: str) -> Any:
        def _build(_session: Session) -> tuple[str, list[str], dict[str, Any]]:
            built.append(kind)
            return "310000", ["320000"], {"jurisdiction": "310000", "kind": kind}

        return _build

    replication.publish_at_commit(db, lists, ("310000", 0), build("list"), rank=1)
    for _ in range(3):  # three key changes in one transaction
        replication.publish_at_commit(db, keys, "310000", build("keys"))
    replication.publish_at_commit(db, lists, ("310000", 1), lambda _s: None, rank=1)
    assert _outbox(db) == []
    db.commit()
    assert built == ["keys", "list"]  # the key set first, each built once
    assert [m.type for m in _outbox(db)] == ["test.keys", "test.list"]


def test_a_published_state_goes_to_one_jurisdiction_of_every_other_node(settings, tmp_path):
    one = settings.model_copy(update={"served_jurisdictions": "*", "federation_file": None})
    assert not replication.federated(one) and replication.other_nodes(one) == []
    known = ["340000", "310000", "320000"]
    # Not federated: one other jurisdiction this node serves (applied locally, no-op).
    assert replication.holders_of_published(one, "310000", known) == ["320000"]
    only = one.model_copy(update={"served_jurisdictions": "310000"})
    assert replication.holders_of_published(only, "310000", known) == []
