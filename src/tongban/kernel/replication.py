"""Replication: the one way a record keeps a copy on another node.

A record that lives on several nodes (a case on its receiving and its competent node, a
joint work order on its lead's and its co-handlers' nodes, a jurisdiction's licence keys
and status lists on every node) declares it once, with a ``Copies`` (records with a
history: their events travel) or a ``Published`` (a state sent whole, newest wins). The
kernel then does, the same way for every context:

- **sending**: always through the exchange's outbox, in the transaction that made the
  change, even when the other copy is on this same node (one code path: on one node the
  message is applied locally and finds it has nothing to do). A record's messages of one
  transaction are built when it commits, from the record as the use case left it, so
  fields set after the event was recorded travel with it;
- **typed, versioned payloads**: the declaration names the pydantic schema of each
  message type and the versions it accepts (`exchange.contracts`); anything else is
  refused before a row is read (``bad-payload``, ``unknown-version``);
- **the sender's right, in one place**: before a change is applied, the jurisdiction
  whose node may send it *for that record* (``Copies.changed_by``) must be one the
  sending node serves, else ``not-allowed``;
- **ordering per record by sequence**: a change carries its event's number; a copy
  appends the next one, ignores one it holds already and asks for a later delivery
  (``OutOfOrder``, retried with back-off) when an earlier one is still missing. A
  published state carries a per-record sequence from the sender's counter; a receiver
  applies only a newer one than it holds (an older, late or replayed one changes nothing);
- **one snapshot/apply**: a snapshot creates the copy with every event so far.

Declaring a record type that keeps copies (the context supplies what only it knows: how
to find its row, build a copy, follow the fields an event moved, and who may change it)::

    PERMITS = replication.Copies(
        noun="许可",
        snapshot_type="permit.shared", snapshot_schema=PermitSnapshot,
        change_type="permit.changed", change_schema=PermitChanged,
        find=lambda session, p: session.get(Permit, p["id"]),
        create=create_copy,                         # (session, snapshot payload) -> Permit
        follow=follow,                              # (session, permit, change payload)
        snapshot=snapshot,                          # (session, permit) -> dict
        change=change_fields,                       # (session, permit, event) -> dict
        shared_by=lambda p: p.jurisdiction_code,    # who may share it
        changed_by=lambda permit, p: permit.jurisdiction_code,   # who may change it
        label=lambda p: p["number"],
    )
    replication.register(PERMITS)                   # the two handlers and contracts

    # in a service, after history.record(...):
    replication.share(session, PERMITS, permit, ev, source, [target, ...])
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, StringConstraints
from sqlalchemy import event
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.exchange import schema as s
from tongban.exchange import service as exchange
from tongban.kernel import history, numbering

log = logging.getLogger(__name__)

R = TypeVar("R")

#: A record's copy on another node changes only through these two messages.
Payload = dict[str, Any]


# --- events on the wire -----------------------------------------------------------------


class EventIn(s.Payload):
    """An event of a record's history as it travels (the columns of every EventRow but
    the local account id and the payload). Contexts narrow `action` and the states."""

    id: s.Uuid
    seq: s.Seq
    action: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,30}$")]
    from_state: Annotated[str, StringConstraints(max_length=24)] | None
    to_state: Annotated[str, StringConstraints(max_length=24)]
    actor_name: Annotated[str, StringConstraints(max_length=200)]
    actor_role: Annotated[str, StringConstraints(max_length=200)]
    comment: s.LongText
    at: s.Instant


def event_dict(ev: history.EventRow) -> Payload:
    """An event as it travels (EventIn)."""
    return {
        "id": str(ev.id),
        "seq": ev.seq,
        "action": ev.action,
        "from_state": ev.from_state,
        "to_state": ev.to_state,
        "actor_name": ev.actor_name,
        "actor_role": ev.actor_role,
        "comment": ev.comment,
        "at": ev.at.isoformat(),
    }


def event_row(obj: history.HasHistory[history.E], data: Mapping[str, Any]) -> history.E:
    """The event row of `obj`'s history for an event received from another node (its
    actor is a name and a kind: the account lives on the other node)."""
    make: Any = history.event_class(obj)
    row: history.E = make(
        id=uuid.UUID(str(data["id"])),
        seq=int(data["seq"]),
        action=str(data["action"]),
        from_state=data["from_state"],
        to_state=str(data["to_state"]),
        actor_id=None,
        actor_name=str(data["actor_name"])[:80],
        actor_role=str(data["actor_role"])[:20],
        comment=str(data["comment"]),
        payload=None,  # (every column set, as `history.record` does: one INSERT for both)
        at=datetime.fromisoformat(str(data["at"])),
    )
    return row


# --- a record type with copies ----------------------------------------------------------


@dataclass(frozen=True)
class Copies(Generic[R]):
    """A record type with a history whose copies live on other nodes: the snapshot that
    creates a copy and the change (one event and the fields it moved) that keeps it in
    step. See the module docstring for an example."""

    noun: str  # Chinese, for messages: 办件, 工单
    snapshot_type: str
    snapshot_schema: type[BaseModel]
    change_type: str
    change_schema: type[BaseModel]
    #: The local row a payload is about (a copy, or on one node the record itself).
    find: Callable[[Session, Mapping[str, Any]], R | None]
    #: A new copy from a snapshot payload, without its events (the kernel adopts them).
    create: Callable[[Session, Mapping[str, Any]], R]
    #: The copy takes the fields carried by a change, after its event was adopted.
    follow: Callable[[Session, R, Mapping[str, Any]], None]
    #: What a snapshot carries besides the events (the kernel adds ``events``).
    snapshot: Callable[[Session, R], Payload]
    #: What a change carries besides ``seq`` and ``event`` (the fields it moved).
    change: Callable[[Session, R, Any], Payload]
    #: The jurisdiction whose node may share a record (from the parsed snapshot).
    shared_by: Callable[[Any], str]
    #: The jurisdiction whose node may send this change for this record.
    changed_by: Callable[[R, Any], str]
    #: A human label of the record a payload is about (its number).
    label: Callable[[Mapping[str, Any]], str]
    #: Further checks of a snapshot's sender (raise exchange.Refused).
    check_snapshot: Callable[[Session, Any, exchange.Sender], None] | None = None
    #: Further checks of a change against the record it is about (raise exchange.Refused).
    check_change: Callable[[Session, Any, exchange.Sender, R], None] | None = None
    #: What to raise when a change finds no copy here (default: deliver it later).
    missing: Callable[[Mapping[str, Any]], Exception] | None = None
    #: The schema versions accepted (the highest is written).
    versions: frozenset[int] = frozenset({1})
    #: What the messages are about for their delivery order (exchange.lane), when
    #: records of this type must travel in one lane with others (a commitment after
    #: its request); None: the exchange's default.
    lane: Callable[[Mapping[str, Any]], str | None] | None = None
    #: Whether a new copy is flushed before ``on_snapshot`` runs (True), or left pending
    #: for it, which flushes (the copy, its events and what it adds go in one INSERT each,
    #: and the copy takes its last counter and fields before it is written: no UPDATE).
    flush_new_copy: bool = True
    #: Reads, once for a batch of snapshots, what `find` would read for each (one query
    #: for them all; `find` then takes the answer from the Session, see `found`).
    prefetch: Callable[[Session, Sequence[Mapping[str, Any]]], None] | None = None

    # -- receiving ----------------------------------------------------------------------

    def authorise_snapshot(self, session: Session, p: Any, sender: exchange.Sender) -> None:
        who = self.shared_by(p)
        sender.require(who, f"{self.noun} {self.label(_plain(p))} 的共享方")
        if who != sender.source_jurisdiction:
            raise exchange.Refused(
                "not-allowed",
                f"{self.noun}只能由其所属辖区（{who}）共享，而非 {sender.source_jurisdiction}",
            )
        if self.check_snapshot is not None:
            self.check_snapshot(session, p, sender)

    def authorise_change(self, session: Session, p: Any, sender: exchange.Sender) -> None:
        rec = self.find(session, _plain(p))
        if rec is None:
            return  # no copy here yet: applying asks for a later delivery (or refuses)
        sender.require(self.changed_by(rec, p), f"{self.noun} {self.label(_plain(p))} 的办理方")
        if self.check_change is not None:
            self.check_change(session, p, sender, rec)

    def receive_snapshot(
        self, session: Session, payload: Mapping[str, Any], *, flush: bool = True
    ) -> tuple[R, bool]:
        """The copy a snapshot describes: created with its events (True), or the row
        this node holds already (False: on one node the record itself; a later state
        arrives as changes). With ``flush=False`` a new copy is left pending (its
        events adopted without a read), for the caller to flush."""
        rec = self.find(session, payload)
        if rec is not None:
            return rec, False
        rec = self.create(session, payload)
        events = sorted(payload.get("events") or (), key=lambda e: int(e["seq"]))
        adopted: list[history.EventRow] = []
        for ev in events:
            row: Any = event_row(rec, ev)  # type: ignore[arg-type]
            if history.adopt(rec, row, announce=flush):  # type: ignore[arg-type]
                adopted.append(row)
        if flush:
            session.flush()
        else:  # announced by whoever flushes the new copy (apply_snapshot)
            session.info.setdefault(_UNANNOUNCED, []).append((rec, adopted))
        return rec, True

    def receive_change(self, session: Session, payload: Mapping[str, Any]) -> R | None:
        """Bring the copy up to a change: the copy, or None when it holds the event
        already (always so on one node, where the copy is the record itself). Raises
        OutOfOrder while an earlier event, or the copy itself, has not arrived."""
        label = self.label(payload)
        rec = self.find(session, payload)
        if rec is None:
            if self.missing is not None:
                raise self.missing(payload)
            raise exchange.OutOfOrder(f"{self.noun} {label} 尚未共享至本节点，稍后重试")
        seq, have = int(payload["seq"]), int(getattr(rec, "event_seq", 0) or 0)
        if seq <= have:
            return None
        if seq > have + 1:
            raise exchange.OutOfOrder(f"{self.noun} {label} 尚缺第 {have + 1} 条记录，稍后重试")
        history.adopt(rec, event_row(rec, payload["event"]))  # type: ignore[arg-type]
        self.follow(session, rec, payload)
        session.flush()
        return rec

    # -- sending ------------------------------------------------------------------------

    def snapshot_payload(self, session: Session, rec: R) -> Payload:
        events = getattr(rec, "events", ())
        return {**self.snapshot(session, rec), "events": [event_dict(e) for e in events]}

    def change_payload(
        self, session: Session, rec: R, ev: history.EventRow, extra: Mapping[str, Any] | None
    ) -> Payload:
        payload = {**self.change(session, rec, ev), "seq": ev.seq, "event": event_dict(ev)}
        if extra:
            payload.update(extra)
        return payload


_FOUND = "tongban.kernel.replication.found"
#: Session.info key: new copies left pending by receive_snapshot(flush=False), with the
#: events adopted for them, announced once written.
_UNANNOUNCED = "tongban.kernel.replication.unannounced"


def remember(session: Session, key: Any, rec: Any) -> None:
    """Note what a prefetch read for `key` (a record, or None: not here), for `found`."""
    session.info.setdefault(_FOUND, {})[key] = rec


def found(session: Session, key: Any, *, take: bool = True) -> tuple[bool, Any]:
    """(True, what a prefetch read for `key`) — the record, or None — else (False,
    None): the caller reads it itself. Taken on use (``take``: the look-up that may
    create the record), so a copy created since is seen by the next look-up."""
    memo: dict[Any, Any] | None = session.info.get(_FOUND)
    if memo is None or key not in memo:
        return False, None
    return True, (memo.pop(key) if take else memo[key])


@event.listens_for(Session, "after_transaction_end")
def _forget_found(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction ended
        session.info.pop(_FOUND, None)
        session.info.pop(_UNANNOUNCED, None)


def _plain(p: Any) -> Mapping[str, Any]:
    """A parsed payload (pydantic) or a dict, as a mapping of its top-level fields."""
    if isinstance(p, BaseModel):
        return {k: getattr(p, k) for k in type(p).model_fields}
    return p  # type: ignore[no-any-return]


Receiver = Callable[[Session, Any, Payload, Any], None]


def register(
    copies: Copies[R],
    *,
    on_snapshot: Callable[[Session, R, bool, Payload, Any], None] | None = None,
    on_change: Callable[[Session, R, Payload, Any], None] | None = None,
) -> Copies[R]:
    """Register the exchange handlers and contracts of `copies`' two message types.
    `on_snapshot(session, rec, created, payload, msg)` and `on_change(session, rec,
    payload, msg)` (a change actually applied) let the context react."""

    def apply_snapshot(session: Session, payload: Payload, msg: Any) -> None:
        rec, created = copies.receive_snapshot(
            session, payload, flush=copies.flush_new_copy or on_snapshot is None
        )
        if on_snapshot is not None:
            on_snapshot(session, rec, created, payload, msg)
        history.settle(session)  # (a batch pass flushes once, at its end)
        for rec_, adopted in session.info.pop(_UNANNOUNCED, ()):
            history.announce_adopted(session, rec_, adopted)

    def prefetch(session: Session, payloads: Sequence[Payload]) -> None:
        if copies.prefetch is not None:
            copies.prefetch(session, payloads)

    def apply_change(session: Session, payload: Payload, msg: Any) -> None:
        rec = copies.receive_change(session, payload)
        if rec is not None and on_change is not None:
            on_change(session, rec, payload, msg)

    if copies.lane is not None:
        exchange.lane(copies.snapshot_type, copies.lane)
        exchange.lane(copies.change_type, copies.lane)
    exchange.handler(
        copies.snapshot_type,
        schema=copies.snapshot_schema,
        authorise=copies.authorise_snapshot,
        versions=copies.versions,
        prefetch=prefetch if copies.prefetch is not None else None,
    )(apply_snapshot)
    exchange.handler(
        copies.change_type,
        schema=copies.change_schema,
        authorise=copies.authorise_change,
        versions=copies.versions,
    )(apply_change)
    return copies


# --- sending at commit ------------------------------------------------------------------

_PENDING = "tongban.kernel.replication.pending"


@dataclass
class _Outgoing:
    copies: Copies[Any]
    rec: Any
    ev: Any  # None: a snapshot
    source: str
    targets: tuple[str, ...]
    extra: Mapping[str, Any] | None = None


def share(
    session: Session,
    copies: Copies[R],
    rec: R,
    ev: history.EventRow | None,
    source: str,
    targets: Iterable[str],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Send `rec`'s new event `ev` (or, with ``ev=None``, its snapshot) from `source` to
    each of `targets` — jurisdictions, served here or elsewhere alike — when the
    transaction commits, built from the record as it is then. `extra` is added to a
    change's payload."""
    todo = tuple(dict.fromkeys(targets))
    if not todo:
        return
    pending: list[_Outgoing] = session.info.setdefault(_PENDING, [])
    pending.append(_Outgoing(copies, rec, ev, source, todo, extra))


def send_now(session: Session, *, written: bool = False) -> int:
    """Write this transaction's pending replication messages to the outbox now (also
    done when it commits); how many. With `written`, each row is written at once by a
    Core INSERT, its audit entry held for the next statement that stages entries
    (`exchange.send_written`): for a caller with no flush of its own to share (a case's
    submission), not the exchange's batch pass."""
    send = exchange.send_written if written else exchange.send
    pending: list[_Outgoing] | None = session.info.pop(_PENDING, None)
    later: dict[tuple[str, Any], _Later] | None = session.info.pop(_LATER, None)
    n = 0
    for item in sorted((later or {}).values(), key=lambda x: x.rank):
        built = item.build(session)
        if built is not None:
            source, targets, payload = built
            n += item.published.publish(session, source, targets, payload)
    for out in pending or ():
        if out.rec not in session or (out.ev is not None and out.ev not in session):
            continue  # rolled back with a savepoint
        if out.ev is None:
            msg_type, payload = (
                out.copies.snapshot_type,
                out.copies.snapshot_payload(session, out.rec),
            )
        else:
            msg_type = out.copies.change_type
            payload = out.copies.change_payload(session, out.rec, out.ev, out.extra)
        for target in out.targets:
            send(session, msg_type, out.source, target, payload)
            n += 1
    return n


def forget_unsent(session: Session) -> None:
    """Drop what this transaction would send on (a pass its caller took back whole)."""
    session.info.pop(_PENDING, None)
    session.info.pop(_LATER, None)


# What a message's handlers send on is written when the message is settled, and dropped
# with a pass taken back whole (exchange._apply).
exchange.on_send_on(send_now, forget_unsent)


# --- a state published whole, newest wins -----------------------------------------------


@dataclass(frozen=True)
class Published:
    """A state a node publishes whole to the other nodes (a jurisdiction's licence keys,
    one of its status lists): each message carries a per-record sequence from the
    sender's counter, and a receiver applies only one newer than it holds."""

    message_type: str
    #: The counter scope of a record (``licence.keys:310000``).
    scope: Callable[[Mapping[str, Any]], str]

    def next_seq(self, session: Session, payload: Mapping[str, Any]) -> int:
        return numbering.next_value(session, f"out:{self.scope(payload)}", gapless=True)

    def newer(self, session: Session, payload: Mapping[str, Any]) -> bool:
        """Whether `payload` is newer than what this node applied of its record; if so
        it becomes the newest (in the caller's transaction). A payload without a
        sequence (schema version 1) is always applied and moves nothing."""
        seq = payload.get("seq")
        if seq is None:
            return True
        scope = f"in:{self.scope(payload)}"
        row = session.get(numbering.NumberCounter, (scope, ""), with_for_update=True)
        if row is None:
            row = numbering.NumberCounter(scope=scope, period="", last=0)
            session.add(row)
        if int(seq) <= row.last:
            return False
        row.last = int(seq)
        session.flush()
        return True

    def publish(
        self, session: Session, source: str, targets: Sequence[str], payload: Payload
    ) -> int:
        """Queue `payload` (numbered) from `source` to each of `targets`; how many."""
        if not targets:
            return 0
        body = {**payload, "seq": self.next_seq(session, payload)}
        for target in targets:
            exchange.send(session, self.message_type, source, target, body)
        return len(targets)


_LATER = "tongban.kernel.replication.later"


@dataclass
class _Later:
    published: Published
    build: Callable[[Session], tuple[str, Sequence[str], Payload] | None]
    rank: int


def publish_at_commit(
    session: Session,
    published: Published,
    key: Any,
    build: Callable[[Session], tuple[str, Sequence[str], Payload] | None],
    rank: int = 0,
) -> None:
    """Publish record `key` of `published` when the transaction commits, however many
    times it changed in it: `build(session)` then gives (source, targets, payload), or
    None for nothing to send. Lower `rank`s are sent first (a key set before the
    status lists signed with it)."""
    later: dict[tuple[str, Any], _Later] = session.info.setdefault(_LATER, {})
    later.setdefault((published.message_type, key), _Later(published, build, rank))


# --- where a published state goes -------------------------------------------------------


def federated(settings: Settings) -> bool:
    """Whether this node is one of several (a federation file, not serving '*')."""
    return settings.federation_file is not None and settings.served_jurisdictions.strip() != "*"


def other_nodes(settings: Settings) -> list[str]:
    """One jurisdiction of every other node of the federation (a message is applied once
    per node; which of its jurisdictions carries it does not matter); none when this
    node is not federated."""
    if not federated(settings):
        return []
    out = []
    for node in exchange.federation_for(settings).nodes.values():
        if node.id == settings.node_id:
            continue
        code = next(
            (
                j
                for j in node.jurisdictions
                if j != "*" and not exchange.serves(j, settings.served_jurisdictions)
            ),
            None,
        )
        if code is not None:
            out.append(code)
    return sorted(out)


def holders_of_published(settings: Settings, about: str, known: Iterable[str]) -> list[str]:
    """Where a state of jurisdiction `about` is published: one jurisdiction of every
    other node in a federation; on a node that is not federated, the first of `known`
    jurisdictions it serves other than `about` — delivered locally, where the handler
    finds the state is its own and changes nothing: the same path as in a federation."""
    if federated(settings):
        return other_nodes(settings)
    for other in sorted(known):
        if other != about and exchange.serves(other, settings.served_jurisdictions):
            return [other]
    return []


# Before any other before_commit listener (insert=True): the messages written here are
# then in the transaction's last flush, which the audit chain settles after.
@event.listens_for(Session, "before_commit", insert=True)
def _send_pending(session: Session) -> None:
    if session.info.get(_PENDING) or session.info.get(_LATER):
        send_now(session)
        session.flush()


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, previous: Any) -> None:
    session.info.pop(_FOUND, None)  # read in what was taken back
    session.info.pop(_UNANNOUNCED, None)
    if not session.in_transaction():
        session.info.pop(_PENDING, None)
        session.info.pop(_LATER, None)


__all__ = [
    "Copies",
    "forget_unsent",
    "found",
    "remember",
    "EventIn",
    "Published",
    "event_dict",
    "event_row",
    "federated",
    "holders_of_published",
    "other_nodes",
    "publish_at_commit",
    "register",
    "send_now",
    "share",
]
