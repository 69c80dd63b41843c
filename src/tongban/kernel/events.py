"""In-process domain events: a context announces what happened, others react, and neither
imports the other.

`publish(session, event)` calls every subscriber of the event's type (and of its base
classes) at once, in the publisher's transaction and in the order they subscribed: a
subscriber's writes commit or roll back with the change that caused them, and a
subscriber that raises a `DomainError` refuses that change (the request answers the
error, nothing is written). Subscribers register with `@subscribe(EventType)` when their
module is imported — a context's registry entry imports it, so every process that loads
the contexts (app, worker, CLI, migrations, tests) has them. What crosses a border to
another node still travels as an exchange message; these events stay in one process.

`gather(session, question)` is the same dispatch for a question whose subscribers answer
(a page of one context showing a panel of another): it returns their answers by
subscriber name.

The events themselves are plain, typed data (ids and values, never ORM rows), defined
here because publisher and subscriber cannot import each other: cases announce
decisions that licences act on while cases also read the licence wallet, so the
announcement cannot live in either.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

E = TypeVar("E", bound="Event")


@dataclass(frozen=True)
class Event:
    """Something that happened (or is about to: see `CaseApproving`)."""


Subscriber = Callable[[Session, Any], Any]
_subscribers: dict[type[Event], list[Subscriber]] = {}


def subscribe(event_type: type[E]) -> Callable[[Callable[[Session, E], Any]], Callable[..., Any]]:
    """Decorator: call the function with (session, event) for every `event_type` (or
    subclass) published. Registering the same function twice has no effect."""

    def register(fn: Callable[[Session, E], Any]) -> Callable[..., Any]:
        found = _subscribers.setdefault(event_type, [])
        if fn not in found:
            found.append(fn)
        return fn

    return register


def subscribers(event_type: type[Event]) -> list[Subscriber]:
    """Subscribers of `event_type` and of its base classes, most general last."""
    out: list[Subscriber] = []
    for cls in event_type.__mro__:
        for fn in _subscribers.get(cls, ()):
            if fn not in out:
                out.append(fn)
    return out


def publish(session: Session, event: Event) -> None:
    """Tell every subscriber, now, in `session`'s transaction. An exception from one
    stops the others and propagates to the publisher."""
    for fn in subscribers(type(event)):
        fn(session, event)


def gather(session: Session, question: Event) -> dict[str, Any]:
    """Every subscriber's answer to `question`, keyed by the subscriber's name (its
    function name, e.g. ``evidence_panel``)."""
    return {fn.__name__: fn(session, question) for fn in subscribers(type(question))}


# --- what any module announces -----------------------------------------------------------


@dataclass(frozen=True)
class Changed(Event):
    """Something was changed in place (a dead message replayed, a key rotated …): the
    audit chain records it as a "change" entry (tongban.audit.hook), so that modules the
    audit context may not be imported by (exchange, the kernel) keep history too.
    `before`/`after` are minimised values; `actor` is "account:<uuid>", "node:<id>",
    "operator:<name>" or "system"."""

    what: str
    subject: str
    actor: str
    before: Any = None
    after: Any = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowsWritten(Event):
    """Rows of the mapped class `cls` that a caller has just written by a Core INSERT on
    the session's connection (`kernel.history.insert_new`), which no flush sees: the audit
    hook gives each the entry a flush would, held for the next statement that stages
    entries (tongban.audit.hook.buffer_rows). `rows` are column values by attribute name."""

    cls: type[Any]
    rows: tuple[dict[str, Any], ...]


# --- what cases announce ---------------------------------------------------------------


@dataclass(frozen=True)
class CaseSubmitted(Event):
    """An application was received (online or at a window); `evidence_consent` lists the
    evidence kinds the applicant agreed to have fetched for it."""

    case_id: uuid.UUID
    evidence_consent: tuple[str, ...] = ()
    #: The account that recorded the submission (the applicant, or the window clerk).
    recorded_by: uuid.UUID | None = None


@dataclass(frozen=True)
class CaseApproving(Event):
    """An officer is about to approve a case. A subscriber that raises a DomainError
    refuses the approval (a licence the applicant relied on no longer verifies)."""

    case_id: uuid.UUID


@dataclass(frozen=True)
class CaseDelivered(Event):
    """The result of a case was delivered to the applicant: what a context issuing
    something for the case (an e-licence) needs to know of it."""

    case_id: uuid.UUID
    matter_code: str
    authority_id: uuid.UUID
    applicant_type: str
    applicant_name: str
    applicant_identifier: str
    #: Whether the case was approved at some point (a denial is delivered too).
    approved: bool
    form_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseStepTaken(Event):
    """A case took a step on this node, or this node's copy of it followed a step taken
    on another node: what a context that started the case (a life-event bundle) needs to
    follow it. Published after the step's own announcements (a licence issued on delivery
    exists by then); `state` is where the case is now."""

    case_id: uuid.UUID
    action: str
    state: str


# --- what case pages ask ---------------------------------------------------------------


@dataclass(frozen=True)
class ApplicationFormShown(Event):
    """The application form of a matter is being shown: contributions to it."""

    matter_code: str


@dataclass(frozen=True)
class CasePageShown(Event):
    """An officer's page of a case is being shown to `actor_id`: panels for it."""

    case_id: uuid.UUID
    actor_id: uuid.UUID


# --- what the kernel's history announces -----------------------------------------------


@dataclass(frozen=True)
class HistoryRecorded(Event):
    """An event was appended to a record's history (kernel.history.record) or adopted from
    another node (kernel.history.adopt, `adopted`): published after the flush, in the
    writer's transaction, for every record type with a history. `kind` is the record's
    table name (``service_case``, ``ticket``, ``licence`` …). Carries only values the
    kernel holds in memory: a subscriber reads what else it needs."""

    kind: str
    record_id: uuid.UUID
    action: str
    from_state: str | None
    to_state: str
    seq: int
    actor_id: uuid.UUID | None = None
    adopted: bool = False


@dataclass(frozen=True)
class RecordConcerns(Event):
    """Question (`gather`): whom does a step of record `kind`/`record_id` concern? The
    context owning records of `kind` answers a `Concerned`; the others answer None."""

    kind: str
    record_id: uuid.UUID
    action: str = ""


@dataclass(frozen=True)
class Concerned:
    """The answer to RecordConcerns. `accounts` are this node's accounts the record is
    about (the applicant, the reporter, the holder); `identifiers` ID numbers or credit
    codes whose accounts on this node are (when the record knows no account);
    `authority_id` the authority whose staff have it in their queue; `label` names it
    in a message (\"办件 3301…\"); `link`/`staff_link` the pages that show it."""

    accounts: tuple[uuid.UUID, ...] = ()
    identifiers: tuple[str, ...] = ()
    authority_id: uuid.UUID | None = None
    label: str = ""
    link: str | None = None
    staff_link: str | None = None
    staff_roles: tuple[str, ...] = ("officer",)


# --- what evidence announces ------------------------------------------------------------


@dataclass(frozen=True)
class DataUsed(Event):
    """A use of a person's data entered this node's 我的数据使用记录 (an evidence request
    answered or refused, a counter's query, a copy of a use decided on another node):
    what the person is told of. Labels are in Chinese."""

    use_id: uuid.UUID
    subject_identifier: str
    user_name: str
    kind_label: str
    purpose_label: str = ""
    answered: bool = True


# --- what licences announce -------------------------------------------------------------


@dataclass(frozen=True)
class LicenceIssued(Event):
    """An e-licence was issued on this node (directly, in bulk or for a delivered case):
    what a context acting on a certified fact (a disability certificate for 免申即享)
    needs. `claims` are the licence's fields as issued; `identifier` is its GB/T 36904
    number, which keys a reaction so that a repeated announcement changes nothing."""

    licence_id: uuid.UUID
    licence_type: str
    identifier: str
    holder_type: str
    holder_identifier: str
    holder_name: str
    issuer_name: str
    claims: dict[str, Any] = field(default_factory=dict)
