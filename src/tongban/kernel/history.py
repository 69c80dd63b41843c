"""History and the version guard of every record with a lifecycle.

A record type declares its history once: the record mixes in ``HasHistory`` (a
per-record event counter) and ``Versioned`` (an optimistic version column), its event
table mixes in ``EventRow`` (the columns every event has, a unique (record, seq)
constraint, and the audit declaration that puts each event into the audit chain)::

    class Permit(Base, HasHistory["PermitEvent"], Versioned):
        __tablename__ = "permit"
        id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
        state: Mapped[str] = mapped_column(String(24))
        events: Mapped[list[PermitEvent]] = relationship(
            back_populates="permit", order_by="PermitEvent.seq", cascade="all, delete-orphan"
        )

    class PermitEvent(Base, EventRow):
        __tablename__ = "permit_event"
        __history_key__ = "permit_id"              # -> UniqueConstraint(permit_id, seq)
        __audit_kind__ = "permit.event"
        __audit_subject__ = ("permit", "permit_id")
        permit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("permit.id"), index=True)
        permit: Mapped[Permit] = relationship(back_populates="events")

    # in a service (never commits):
    target = MACHINE.next_state(State(permit.state), action, kind)
    ev = record(session, permit, action, officer, permit.state, target, reason="…")
    permit.state = target  # or before record(); both are flushed together

``record`` numbers the event from the counter on the record (``event_seq``), not from
the length of a list, appends it to ``obj.events`` without loading the events already
there (a new record has none; an existing one gets it through the event's reference)
and flushes: the record's UPDATE
carries ``WHERE version = <the version read>``, so of two requests that read the same
version only the first flushes; the second gets ``ConcurrentChange`` (a 409
problem+json, type ``concurrent-change``). The unique (record, seq) constraint makes
two events with one number impossible even for a writer that bypasses the counter.

Why an optimistic version column rather than ``SELECT … FOR UPDATE``: it guards every
UPDATE of the record, wherever it comes from (a page, the API, a job, a message
handler), without each of them having to remember to lock first; a loser gets a 409
instead of waiting; and it behaves the same on SQLite, where FOR UPDATE does not exist
(SQLite serialises writers at BEGIN IMMEDIATE, so there the loser re-reads and is
refused by the state machine instead — also a 409).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    JSON,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    insert,
    inspect,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import (
    Mapped,
    Session,
    declared_attr,
    make_transient_to_detached,
    mapped_column,
    object_session,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from tongban.db import UTCDateTime, new_id, utcnow
from tongban.errors import ConcurrentChange
from tongban.kernel import events

# --- who acts ----------------------------------------------------------------------------


class AccountLike(Protocol):
    """What history needs of an account (tongban.identity.models.Account fits)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def display_name(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class Who:
    """The actor of an event: an account of this node (id), or a name and kind only (the
    system, another node's officer)."""

    id: uuid.UUID | None
    name: str
    kind: str


SYSTEM = Who(None, "系统", "system")


def who(
    actor: AccountLike | Who | None, *, name: str | None = None, kind: str | None = None
) -> Who:
    """`actor` as a Who (None is the system); `name`/`kind` override its own."""
    if actor is None:
        base = SYSTEM
    elif isinstance(actor, Who):
        base = actor
    else:
        base = Who(actor.id, actor.display_name, str(actor.role))
    return Who(base.id, name or base.name, kind or base.kind)


# --- the mixins --------------------------------------------------------------------------


E = TypeVar("E", bound="EventRow")


class Versioned:
    """An optimistic version column: every UPDATE of the row checks and bumps it
    (SQLAlchemy's ``version_id_col``); a stale writer gets StaleDataError at flush,
    which ``record`` and ``guarded`` turn into ConcurrentChange (409)."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class HasHistory(Generic[E]):
    """A record with a history: `event_seq` is the number of its last event. The class
    must have an ``events`` relationship to its EventRow class ``E`` (name it in the
    base, ``HasHistory["PermitEvent"]``, and ``record`` returns that class)."""

    event_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")


class EventRow:
    """The columns of every event table: who, when, from, to, why and a payload.

    A subclass names its record's foreign key in ``__history_key__`` (a unique
    (key, seq) constraint follows) and its audit kind and subject; every new event is
    appended to the audit chain by tongban.audit.hook (the comment and the payload
    enter it only as digests). ``actor_role`` is the actor's kind or role, ``comment``
    the reason."""

    __history_key__: ClassVar[str]
    __audit_actor__: ClassVar[tuple[str, str]] = ("account", "actor_id")
    __audit_fields__: ClassVar[tuple[str, ...]] = (
        "seq",
        "action",
        "from_state",
        "to_state",
        "actor_role",
        "at",
    )
    __audit_digest__: ClassVar[tuple[str, ...]] = ("comment", "payload")

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (UniqueConstraint(cls.__history_key__, "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    actor_name: Mapped[str] = mapped_column(String(80))
    actor_role: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventPublic(BaseModel):
    """An event as the JSON API shows it (the columns of EventRow but the account id and
    the payload)."""

    model_config = ConfigDict(from_attributes=True)
    seq: int
    action: str
    from_state: str | None
    to_state: str
    actor_name: str
    actor_role: str
    comment: str
    at: datetime


# --- writing history ---------------------------------------------------------------------


_CONCURRENCY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


@contextmanager
def guarded() -> Iterator[None]:
    """Turn the signs of a concurrent change met while flushing into ConcurrentChange
    (409): a stale version, a duplicate event number, a deadlock or serialization
    failure. Anything else propagates unchanged."""
    try:
        yield
    except StaleDataError as e:
        raise ConcurrentChange() from e
    except IntegrityError as e:
        if "seq" in str(e.orig) and "event" in str(e.orig):
            raise ConcurrentChange() from e
        raise
    except DBAPIError as e:
        if getattr(e.orig, "sqlstate", None) in _CONCURRENCY_SQLSTATES:
            raise ConcurrentChange() from e
        raise


def flush(session: Session) -> None:
    """``session.flush()``, with concurrent changes reported as ConcurrentChange (409)."""
    with guarded():
        session.flush()


#: Session.info keys: set by `one_flush` while its caller applies a pass that it flushes
#: once at the end and takes back whole on any error; the HistoryRecorded held till then.
_ONE_FLUSH = "tongban.kernel.history.one_flush"
_HELD = "tongban.kernel.history.held"


@contextmanager
def one_flush(session: Session) -> Iterator[None]:
    """Within it, `record` and `settle` leave their flush to its end, which flushes once
    and then publishes the HistoryRecorded of the events recorded and adopted within (a
    subscriber looking a record up then finds it written, without a flush of its own).
    Issue 14: a batch of received messages writes its records, their events and audit
    entries in one INSERT a table, not one a message. Only for a caller that takes back
    the whole pass when anything in it fails (that flush included): the exchange's batch
    pass, which then applies each part again outside it (its retry, one message at a
    time, reports a concurrent change (409) as `record` does), and a case's submission
    (cases.submission: the case, its event and its hand-over in one flush), whose request
    is rolled back whole. Nested: the outer one flushes."""
    if session.info.get(_ONE_FLUSH):
        yield
        return
    held: list[events.HistoryRecorded] = []
    session.info[_ONE_FLUSH], session.info[_HELD] = True, held
    try:
        yield
    finally:
        session.info.pop(_ONE_FLUSH, None)
        session.info.pop(_HELD, None)
    flush(session)
    for announced in held:
        events.publish(session, announced)


def settle(session: Session) -> None:
    """``session.flush()``, unless the caller flushes once for its pass (`one_flush`)."""
    if not session.info.get(_ONE_FLUSH):
        session.flush()


def event_class(obj: HasHistory[E]) -> type[E]:
    """The EventRow class of `obj`'s history (the target of its ``events`` relationship)."""
    cls: type[E] = inspect(type(obj)).relationships["events"].mapper.class_
    return cls


def _event(
    obj: HasHistory[E],
    seq: int,
    action: str,
    actor_: Who,
    from_: str | None,
    to: str,
    reason: str,
    payload: dict[str, Any] | None,
) -> E:
    """A new event of `obj` numbered `seq`. Its id is set here, as an adopted event's is:
    the same columns, so that events recorded and adopted in one flush go in one INSERT."""
    make: Any = event_class(obj)  # a mapped subclass: its constructor takes the columns
    ev: E = make(
        id=new_id(),
        seq=seq,
        action=str(action),
        from_state=None if from_ is None else str(from_),
        to_state=str(to),
        actor_id=actor_.id,
        actor_name=actor_.name,
        actor_role=actor_.kind,
        comment=reason,
        payload=payload,
        at=utcnow(),
    )
    return ev


def record(
    session: Session,
    obj: HasHistory[E],
    action: str,
    actor: AccountLike | Who | None,
    from_: str | None,
    to: str,
    reason: str = "",
    payload: dict[str, Any] | None = None,
) -> E:
    """Append an event to `obj`'s history (who, when, from, to, why, payload) numbered
    from the record's own counter, and flush: the record's version is checked and
    bumped with it, the event joins the audit chain, and HistoryRecorded is published
    (what the notifications hear without each context calling them). Raises ConcurrentChange (409)
    when another transaction changed the record since it was read. Within `one_flush`
    the flush is its caller's (at the end of its pass)."""
    actor_ = who(actor)
    with guarded():
        obj.event_seq = (obj.event_seq or 0) + 1
        ev: E = _event(obj, obj.event_seq, action, actor_, from_, to, reason, payload)
        _append(session, obj, ev)
        settle(session)
    _announce(session, obj, ev, adopted=False)
    return ev


def insert_new(
    session: Session,
    obj: HasHistory[E],
    action: str,
    actor: AccountLike | Who | None,
    to: str,
    reason: str = "",
    payload: dict[str, Any] | None = None,
) -> E:
    """`record` for a brand-new record (transient: built, not yet added): the record and
    its first event are written at once by two compiled Core INSERTs on the session's
    connection, in its transaction, without a unit-of-work flush for them (issue 14: the
    flush's planning and bookkeeping for the two largest rows of a submission); then both
    objects join the session as persistent, every column loaded (the values written,
    Python-side column defaults included), so nothing later in the transaction reads them
    back. The event's audit entry is the one a flush would give it, staged by the next
    statement that stages entries (`events.RowsWritten`: the next flush's, or the
    commit). Its collections start empty but for ``events``; append to them (a case's
    attachments) after this call, and the next flush writes what was appended. The
    version starts at 1, so a later UPDATE of the record is guarded as usual.
    HistoryRecorded is published as `record` publishes it (within `one_flush`, at its
    end). Raises ConcurrentChange (409) on a duplicate event number, as `record` does."""
    if inspect(obj).key is not None or object_session(obj) is not None:
        raise ValueError("insert_new takes a transient record")
    actor_ = who(actor)
    obj.event_seq = 1
    ev: E = _event(obj, 1, action, actor_, None, to, reason, payload)
    back = inspect(type(obj)).relationships["events"].back_populates
    setattr(ev, type(ev).__history_key__, cast(Any, obj).id)
    rows = _row_values(obj), _row_values(ev)
    connection = session.connection()
    with guarded():
        connection.execute(_insert_of(type(obj)), rows[0])
        connection.execute(_insert_of(type(ev)), rows[1])
    _persistent(obj, rows[0])
    _persistent(ev, rows[1])
    for rel in inspect(
        type(obj)
    ).relationships:  # a row that did not exist has nothing pointing at it yet
        if rel.uselist:
            set_committed_value(obj, rel.key, [ev] if rel.key == "events" else [])
    if back:
        set_committed_value(ev, back, obj)
    session.add(obj)  # persistent (and its event, by the cascade): no INSERT at a flush
    events.publish(session, events.RowsWritten(type(ev), (rows[1],)))
    _announce(session, obj, ev, adopted=False)
    return ev


#: Per mapped class: its compiled INSERT (SQLAlchemy caches the compiled form of one
#: statement object) and (attribute, column key, Python-side default) of every column.
_INSERTS: dict[type[Any], Any] = {}
_COLUMNS: dict[type[Any], tuple[tuple[str, str, Any], ...]] = {}


def _insert_of(cls: type[Any]) -> Any:
    stmt = _INSERTS.get(cls)
    if stmt is None:
        stmt = _INSERTS[cls] = insert(cast(Table, cls.__table__))
    return stmt


def _columns_of(cls: type[Any]) -> tuple[tuple[str, str, Any], ...]:
    found = _COLUMNS.get(cls)
    if found is None:
        out = []
        for prop in inspect(cls).column_attrs:
            (col,) = prop.columns
            default = col.default
            if default is None and col.server_default is not None:
                raise TypeError(f"{cls.__name__}.{prop.key}: a server default needs RETURNING")
            out.append((prop.key, col.key, default))
        found = _COLUMNS[cls] = tuple(out)
    return found


def _row_values(obj: Any) -> dict[str, Any]:
    """Every column's value for `obj`'s INSERT by column key: what was set on it, else
    the column's Python-side default (as a flush would apply it), else None."""
    have = obj.__dict__
    row: dict[str, Any] = {}
    for attr, col, default in _columns_of(type(obj)):
        if attr in have:
            value = have[attr]
        elif default is None:
            value = None
        elif default.is_callable:
            value = default.arg(None)  # new_id, utcnow, dict: they take no context
        else:
            value = default.arg
        row[col] = value
    return row


def _persistent(obj: Any, row: dict[str, Any]) -> None:
    """`obj` as if loaded from the row just written: every column set, no pending
    change, its identity key given (detached until added to a session)."""
    state = inspect(obj)
    for attr, col, _default in _columns_of(type(obj)):
        state.dict[attr] = row[col]
    make_transient_to_detached(obj)


def _append(session: Session, obj: Any, ev: EventRow) -> None:
    """Add `ev` to `obj`'s history without reading the events it has (issue 14): a new
    record (pending, or persistent with no event yet: its counter was 0) has none, so
    its collection starts empty; an existing record whose events are not loaded gets
    the event through the event's own reference to it (the collection, when loaded
    later, includes it); a loaded collection is appended to."""
    state = inspect(obj)
    if "events" in state.dict or state.pending or state.transient:
        obj.events.append(ev)
        return
    if obj.event_seq == 1:  # persistent and this is its first event
        set_committed_value(obj, "events", [])
        obj.events.append(ev)
        return
    back = state.mapper.relationships["events"].back_populates
    if back:
        setattr(ev, back, obj)  # the backref queues the append: no load
        session.add(ev)
    else:
        obj.events.append(ev)


def _announce(session: Session, obj: Any, ev: EventRow, *, adopted: bool) -> None:
    """Publish HistoryRecorded for `ev` (within `one_flush`, at its end): values already
    in memory, no SQL of its own (a subscriber's reads and writes are its own cost)."""
    announced = events.HistoryRecorded(
        kind=type(obj).__tablename__,
        record_id=obj.id,
        action=ev.action,
        from_state=ev.from_state,
        to_state=ev.to_state,
        seq=ev.seq,
        actor_id=ev.actor_id,
        adopted=adopted,
    )
    held: list[events.HistoryRecorded] | None = session.info.get(_HELD)
    if held is not None:  # within one_flush: published once the records are written
        held.append(announced)
    else:
        events.publish(session, announced)


def adopt(obj: HasHistory[E], ev: E, *, announce: bool = True) -> bool:
    """Append an event made elsewhere (a copy's event received from another node) with
    its own number: keeps the counter in step, and announces it (HistoryRecorded with
    ``adopted``) like one recorded here — or, not `announce`, leaves that to the caller
    (`announce_adopted`, once the record is written: a new copy still pending would
    be flushed by the first subscriber that looks it up). False when `obj` has it
    already."""
    if ev.seq <= (obj.event_seq or 0):
        return False
    obj.events.append(ev)  # type: ignore[attr-defined]
    obj.event_seq = ev.seq
    session = object_session(obj)
    if session is not None and announce:
        _announce(session, obj, ev, adopted=True)
    return True


def announce_adopted(session: Session, obj: Any, evs: list[EventRow]) -> None:
    """Announce events adopted with ``announce=False`` (HistoryRecorded, ``adopted``)."""
    for ev in evs:
        _announce(session, obj, ev, adopted=True)
