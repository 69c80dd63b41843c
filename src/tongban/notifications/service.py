"""Use cases of the message centre: hearing steps of records (the kernel's
HistoryRecorded) and writing messages for the people they concern, the inbox, contact
details and channel choices, and the outbox the worker sends. Never commits.

Who a record concerns is the record's own context's answer to the kernel question
`RecordConcerns` (tickets, licences and medical answer for theirs; cases are answered
here through `cases.service`, the only way this context may read them)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, TextClause, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.db import utcnow
from tongban.errors import FieldError, NotFound, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import events
from tongban.kernel.cache import Cache
from tongban.notifications import domain
from tongban.notifications.domain import Audience, ChannelName, Rule
from tongban.notifications.models import Contact, Delivery, Message

# --- hearing steps --------------------------------------------------------------------


@events.subscribe(events.HistoryRecorded)
def on_history(session: Session, ev: events.HistoryRecorded) -> None:
    """A record took a step (here, or on another node and adopted here): the messages
    its rule names, for the accounts of this node it concerns. Most steps have no rule
    and cost a dictionary lookup."""
    rules = domain.rules_for(ev.kind, ev.action)
    if not rules:
        return
    concerned = concerns(session, ev.kind, ev.record_id, ev.action)
    if concerned is None:
        return
    for rule in rules:
        recipients = _recipients(session, rule.audience, concerned)
        if ev.actor_id is not None:
            recipients = [a for a in recipients if a != ev.actor_id]  # not told of one's own step
        link = concerned.staff_link if rule.audience is Audience.STAFF else concerned.link
        post(
            session,
            recipients,
            rule,
            concerned.label,
            link=link,
            record=(ev.kind, ev.record_id),
            dedupe=domain.dedupe_key(ev.kind, str(ev.record_id), ev.seq, rule.topic),
            # A recorded or adopted event is new on this node by construction (the kernel
            # announces an event once): no need to look for an earlier message of it.
            fresh=True,
        )


def concerns(
    session: Session, kind: str, record_id: uuid.UUID, action: str = ""
) -> events.Concerned | None:
    """Whom a record concerns, as its own context answers (None: no context knows it)."""
    answers = events.gather(session, events.RecordConcerns(kind, record_id, action))
    for answer in answers.values():
        if isinstance(answer, events.Concerned):
            return answer
    return None


@events.subscribe(events.RecordConcerns)
def case_concerns(session: Session, q: events.RecordConcerns) -> events.Concerned | None:
    """The answer for cases (the cases context is not edited for this: its service is read)."""
    if q.kind != domain.CASE:
        return None
    try:
        case = cases.case_by_id(session, q.record_id)
    except NotFound:
        return None
    return events.Concerned(
        accounts=(case.applicant_id,) if case.applicant_id else (),
        authority_id=case.authority_id if case.authority_id else None,
        label=f"办件 {case.number}（{case.matter_name}）",
        link=f"/my/cases/{case.id}",
        staff_link=f"/workbench/cases/{case.id}",
    )


@events.subscribe(events.DataUsed)
def on_data_used(session: Session, ev: events.DataUsed) -> None:
    """Someone used a person's data (an evidence request answered, a counter's query):
    the person hears of it on their node."""
    accounts = _accounts_by_identifier(session, (ev.subject_identifier,))
    verb = "调取" if ev.answered else "申请调取（未获提供）"
    label = f"{ev.user_name}{verb}了您的{ev.kind_label}" + (
        f"，用于{ev.purpose_label}" if ev.purpose_label else ""
    )
    for rule in domain.rules_for(domain.DATA_USE, "used"):
        post(
            session,
            accounts,
            rule,
            label,
            link="/my/data-use",
            record=(domain.DATA_USE, ev.use_id),
            dedupe=domain.dedupe_key(domain.DATA_USE, str(ev.use_id), 0, rule.topic),
        )


def warn_case_deadlines(session: Session) -> int:
    """Tell the officers of each authority of the cases in their queue whose statutory
    deadline is approaching or past (the flags the cases worker keeps), once per case,
    deadline and flag. Returns the number of messages written."""
    officers: dict[uuid.UUID, list[Account]] = {}
    for officer in session.scalars(
        select(Account).where(
            Account.role == Role.OFFICER.value,
            Account.is_active.is_(True),
            Account.authority_id.is_not(None),
        )
    ):
        assert officer.authority_id is not None
        officers.setdefault(officer.authority_id, []).append(officer)
    written = 0
    for staff in officers.values():
        for flag in ("approaching", "overdue"):
            (rule,) = domain.rules_for(domain.CASE, f"deadline_{flag}")
            # Every officer of an authority sees its queue: one reads it for all.
            for case in cases.list_cases(session, staff[0], deadline_flag=flag, limit=500):
                label = f"办件 {case.number}（{case.matter_name}，期限 {case.deadline}）"
                written += len(
                    post(
                        session,
                        [o.id for o in staff],
                        rule,
                        label,
                        link=f"/workbench/cases/{case.id}",
                        record=(domain.CASE, case.id),
                        dedupe=domain.dedupe_key(
                            domain.CASE, str(case.id), f"{case.deadline}", rule.topic
                        ),
                    )
                )
    return written


def _recipients(
    session: Session, audience: Audience, concerned: events.Concerned
) -> list[uuid.UUID]:
    if audience is Audience.PARTY:
        out = list(dict.fromkeys(concerned.accounts))
        if concerned.identifiers:
            out += [
                a for a in _accounts_by_identifier(session, concerned.identifiers) if a not in out
            ]
        return out
    if concerned.authority_id is None:
        return []
    authority_id, roles = concerned.authority_id, tuple(sorted(concerned.staff_roles))

    def load() -> tuple[uuid.UUID, ...]:
        return tuple(
            session.scalars(
                select(Account.id).where(
                    Account.authority_id == authority_id,
                    Account.role.in_(roles),
                    Account.is_active.is_(True),
                )
            )
        )

    # An authority's staff, cached per process until an account changes (issue 14).
    return list(_STAFF.get(session, (authority_id, roles), load))


_STAFF: Cache[tuple[uuid.UUID, ...]] = Cache("notifications.staff", tables={"account"}, ttl=300)


def _accounts_by_identifier(session: Session, identifiers: Iterable[str]) -> list[uuid.UUID]:
    ids = [i for i in identifiers if i]
    if not ids:
        return []
    return list(
        session.scalars(
            select(Account.id).where(
                Account.role.in_((Role.RESIDENT.value, Role.ENTERPRISE.value)),
                Account.is_active.is_(True),
                (Account.id_number.in_(ids)) | (Account.credit_code.in_(ids)),
            )
        )
    )


def post(
    session: Session,
    accounts: Sequence[uuid.UUID],
    rule: Rule,
    label: str,
    *,
    link: str | None,
    record: tuple[str, uuid.UUID] | None,
    dedupe: str,
    fresh: bool = False,
) -> list[Message]:
    """A message of `rule` about `label` to each of `accounts` (once per `dedupe` key:
    accounts that have it already are skipped, unless the caller knows the key is
    `fresh`), and a delivery in the outbox for each channel the account chose."""
    if not accounts:
        return []
    seen: set[uuid.UUID] = set()
    if not fresh:
        seen = set(
            session.scalars(
                select(Message.account_id).where(
                    Message.account_id.in_(accounts), Message.dedupe_key == dedupe
                )
            )
        )
    todo = [a for a in dict.fromkeys(accounts) if a not in seen]
    if not todo:
        return []
    chosen = _channels(session, todo)
    title, body = rule.render(label)
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "account_id": account_id,
            "topic": rule.topic,
            "title": title[:120],
            "body": body,
            "link": link,
            "record_kind": record[0] if record else None,
            "record_id": record[1] if record else None,
            "dedupe_key": dedupe,
            "created_at": now,
        }
        for account_id in todo
    ]
    if not any(a in chosen for a in todo):
        # Nothing for the outbox: every message in one INSERT of a multi-row VALUES, now,
        # in the step's transaction (committed with it or not at all). Added to the
        # session instead, the next flush would write them with an executemany, which
        # on PostgreSQL (psycopg's pipeline) cost a submission's server ~4 % of its CPU
        # for two rows (issue 14, "Session 12: submission"). Returned as plain
        # (transient) Message objects: nothing reads them from the session.
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            params = {f"{c}_{i}": row[c] for i, row in enumerate(chunk) for c in _COLUMNS}
            session.execute(_insert_messages(len(chunk)), params)
        return [Message(**row) for row in rows]
    out = [Message(**row) for row in rows]
    session.add_all(out)
    # The messages first: a delivery's foreign key names its message (no relationship
    # orders the two inserts).
    session.flush()
    for msg in out:
        for channel, address in chosen.get(msg.account_id, ()):
            session.add(
                Delivery(
                    message_id=msg.id,
                    channel=channel.value,
                    address=address,
                    state=domain.DeliveryState.PENDING.value,
                    attempts=0,
                    next_attempt_at=utcnow(),
                )
            )
    session.flush()
    return out


_COLUMNS = (
    "id",
    "account_id",
    "topic",
    "title",
    "body",
    "link",
    "record_kind",
    "record_id",
    "dedupe_key",
    "created_at",
)
_ROWS_PER_INSERT = 100


@functools.lru_cache(maxsize=_ROWS_PER_INSERT)
def _insert_messages(rows: int) -> TextClause:
    """INSERT of `rows` messages in one statement. A text statement with typed bound
    parameters, built once per number of rows: SQLAlchemy caches its compiled form,
    which it does not for an insert() of several VALUES rows (compiled on every
    execution, which cost more than the executemany it replaced)."""
    table = Message.__table__
    assert isinstance(table, Table)
    values = ", ".join("(" + ", ".join(f":{c}_{i}" for c in _COLUMNS) + ")" for i in range(rows))
    return text(f"INSERT INTO {table.name} ({', '.join(_COLUMNS)}) VALUES {values}").bindparams(
        *(bindparam(f"{c}_{i}", type_=table.c[c].type) for i in range(rows) for c in _COLUMNS)
    )


#: An account's chosen channels and addresses, by the set of accounts a message goes to
#: (an authority's staff: the same few sets again and again), cached per process until a
#: contact changes (issue 14: no SELECT of contacts per step).
_CHANNELS: Cache[dict[uuid.UUID, tuple[tuple[ChannelName, str], ...]]] = Cache(
    "notifications.channels", tables={"notify_contact"}, ttl=300
)


def _channels(
    session: Session, accounts: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[tuple[ChannelName, str], ...]]:
    """The channels each of `accounts` chose (only those that chose one)."""

    def load() -> dict[uuid.UUID, tuple[tuple[ChannelName, str], ...]]:
        rows = session.scalars(select(Contact).where(Contact.account_id.in_(accounts)))
        return {c.account_id: tuple(ch) for c in rows if (ch := _chosen(c))}

    return _CHANNELS.get(session, tuple(accounts), load)


def _chosen(contact: Contact) -> list[tuple[ChannelName, str]]:
    out = []
    if contact.by_email and contact.email:
        out.append((ChannelName.EMAIL, contact.email))
    if contact.by_sms and contact.phone:
        out.append((ChannelName.SMS, contact.phone))
    return out


# --- the inbox ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    messages: list[Message]
    page: int
    pages: int
    total: int
    unread: int


PAGE_SIZE = 20


def unread_count(session: Session, account_id: uuid.UUID) -> int:
    """The header's count: one count on the (account_id, read_at) index."""
    n = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.account_id == account_id, Message.read_at.is_(None))
    )
    return int(n or 0)


def inbox(session: Session, actor: Account, page: int = 1, *, unread_only: bool = False) -> Page:
    """The caller's messages, newest first, PAGE_SIZE a page."""
    where = [Message.account_id == actor.id]
    if unread_only:
        where.append(Message.read_at.is_(None))
    total = int(session.scalar(select(func.count()).select_from(Message).where(*where)) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = list(
        session.scalars(
            select(Message)
            .where(*where)
            .order_by(Message.created_at.desc(), Message.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
    )
    return Page(rows, page, pages, total, unread_count(session, actor.id))


def get_message(session: Session, actor: Account, message_id: uuid.UUID) -> Message:
    """One of the caller's messages (another account's is not found, not forbidden)."""
    msg = session.get(Message, message_id)
    if msg is None or msg.account_id != actor.id:
        raise NotFound("消息不存在", type="unknown-message")
    return msg


def mark_read(session: Session, actor: Account, message_id: uuid.UUID) -> Message:
    """Mark one of the caller's messages read (again: no change)."""
    msg = get_message(session, actor, message_id)
    if msg.read_at is None:
        msg.read_at = utcnow()
        session.flush()
    return msg


def mark_all_read(session: Session, actor: Account) -> int:
    """Mark every unread message of the caller read; returns how many."""
    result = session.execute(
        update(Message)
        .where(Message.account_id == actor.id, Message.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- contact details and channel choices ------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    email: str | None
    phone: str | None
    by_email: bool
    by_sms: bool
    #: Channels this node can send over (e-mail only when SMTP is configured).
    available: tuple[ChannelName, ...]


def preferences(session: Session, actor: Account, available: Iterable[ChannelName]) -> Preferences:
    """The caller's contact details and chosen channels (the account's phone as a
    suggestion until one is saved)."""
    c = session.get(Contact, actor.id)
    if c is None:
        return Preferences(None, actor.phone, False, False, tuple(available))
    return Preferences(c.email, c.phone, c.by_email, c.by_sms, tuple(available))


def set_preferences(
    session: Session,
    actor: Account,
    *,
    email: str | None,
    phone: str | None,
    by_email: bool,
    by_sms: bool,
    available: Iterable[ChannelName],
) -> Preferences:
    """Save the caller's contact details and channels: an address is required for a
    chosen channel and must be valid; a channel this node cannot send over is refused.
    Every problem is reported at once (422 with each field)."""
    email = (email or "").strip() or None
    phone = (phone or "").replace(" ", "").replace("-", "") or None
    can = set(available)
    errors: list[FieldError] = []
    if email and (problem := domain.email_problem(email)):
        errors.append(FieldError(field="email", message=problem))
    if phone and (problem := domain.phone_problem(phone)):
        errors.append(FieldError(field="phone", message=problem))
    if by_email and ChannelName.EMAIL not in can:
        errors.append(FieldError(field="by_email", message="本平台暂未开通电子邮件通知"))
    elif by_email and not email:
        errors.append(FieldError(field="email", message="选择电子邮件通知时，请填写电子邮箱"))
    if by_sms and ChannelName.SMS not in can:
        errors.append(FieldError(field="by_sms", message="本平台暂未开通短信通知"))
    elif by_sms and not phone:
        errors.append(FieldError(field="phone", message="选择短信通知时，请填写手机号码"))
    if errors:
        raise ValidationFailed("通知设置有误", errors=errors)
    c = session.get(Contact, actor.id)
    if c is None:
        c = Contact(account_id=actor.id)
        session.add(c)
    c.email, c.phone, c.by_email, c.by_sms = email, phone, by_email, by_sms
    session.flush()
    return preferences(session, actor, can)


# --- the outbox -----------------------------------------------------------------------------


def due_deliveries(session: Session, now: datetime, limit: int) -> list[uuid.UUID]:
    """Deliveries whose (next) attempt is due, oldest first."""
    return list(
        session.scalars(
            select(Delivery.id)
            .where(
                Delivery.state == domain.DeliveryState.PENDING.value,
                Delivery.next_attempt_at <= now,
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
        )
    )


def claim(session: Session, delivery_id: uuid.UUID, until: datetime) -> Delivery | None:
    """Take a due delivery for one attempt: moves its next attempt to `until` so that a
    second worker does not send it too (compare-and-set on next_attempt_at); None when
    another worker took it or it is no longer due."""
    d = session.get(Delivery, delivery_id)
    if d is None or d.state != domain.DeliveryState.PENDING.value:
        return None
    taken = session.execute(
        update(Delivery)
        .where(Delivery.id == d.id, Delivery.next_attempt_at == d.next_attempt_at)
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    if not getattr(taken, "rowcount", 0):
        return None
    session.refresh(d)
    return d


def message_of(session: Session, d: Delivery) -> Message:
    msg = session.get(Message, d.message_id)
    assert msg is not None  # a foreign key
    return msg


def deliveries_of(session: Session, message_id: uuid.UUID) -> list[Delivery]:
    return list(session.scalars(select(Delivery).where(Delivery.message_id == message_id)))
