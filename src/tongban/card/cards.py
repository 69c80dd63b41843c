"""Cards and their holders: issuing, 挂失 / 解除挂失 / 补换 / 注销 on the kernel's state
machine with history, who may act (the holder, or a window clerk of the card's
jurisdiction for a walk-in), and the demo cards. Never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.card import domain, federation
from tongban.card.domain import Actor, CardAction, CardStatus, Concession, Generation, StepFacts
from tongban.card.models import Card
from tongban.db import utcnow
from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role, validate_id_number
from tongban.identity.models import Account
from tongban.identity.service import is_proven, require_assurance
from tongban.kernel import history, numbering
from tongban.kernel.history import Who
from tongban.regions import service as regions


def _not_found() -> NotFound:
    return NotFound("社保卡不存在或无权查看", type="unknown-card")


# --- who acts ----------------------------------------------------------------------------


def _is_holder(user: Account, card: Card) -> bool:
    if user.role != Role.RESIDENT.value or not is_proven(user):
        return False
    return card.holder_account_id == user.id or (
        user.id_number is not None and card.holder_id_number == user.id_number
    )


def _is_clerk_for(user: Account, card: Card) -> bool:
    return user.role == Role.CLERK.value and user.jurisdiction_code == card.jurisdiction_code


def actor_kind(user: Account, card: Card) -> Actor | None:
    """How `user` may act on `card`: as its holder, as a window clerk of its
    jurisdiction, or not at all (None)."""
    if _is_holder(user, card):
        return Actor.HOLDER
    if _is_clerk_for(user, card):
        return Actor.CLERK
    return None


def allowed_actions(user: Account, card: Card) -> list[CardAction]:
    """What the card's page offers `user` (guards, such as a reason, are checked on
    submission)."""
    kind = actor_kind(user, card)
    if kind is None:
        return []
    return domain.MACHINE.allowed_actions(CardStatus(card.state), kind)


# --- reading -----------------------------------------------------------------------------


def _require_holder(user: Account) -> None:
    if user.role != Role.RESIDENT.value:
        raise PermissionDenied("“我的社保卡”仅供个人账户使用")
    # A card is bound to the ID number: a self-declared one proves nothing.
    require_assurance(user)


def list_mine(session: Session, user: Account) -> list[Card]:
    """The holder's cards (by account, or by ID number for cards made before the account),
    the newest first."""
    _require_holder(user)
    clauses = [Card.holder_account_id == user.id]
    if user.id_number:
        clauses.append(Card.holder_id_number == user.id_number)
    return list(
        session.scalars(select(Card).where(or_(*clauses)).order_by(Card.issued_at.desc(), Card.id))
    )


def current_card(session: Session, user: Account) -> Card | None:
    """The holder's card in use: the newest one that is normal, else the newest (lost)
    one; None when they have none."""
    cards = [c for c in list_mine(session, user) if c.state != CardStatus.REPLACED.value]
    normal = [c for c in cards if c.state == CardStatus.NORMAL.value]
    pool = normal or cards
    return pool[0] if pool else None


def get_for(session: Session, user: Account, card_id: uuid.UUID) -> Card:
    """One card `user` may see (its holder, a clerk of its jurisdiction); anyone else's is
    'not found'."""
    card = session.get(Card, card_id)
    if card is None or actor_kind(user, card) is None:
        raise _not_found()
    return card


def find_for_clerk(session: Session, clerk: Account, id_number: str) -> list[Card]:
    """The cards of a walk-in with `id_number` in the clerk's jurisdiction, newest first."""
    if clerk.role != Role.CLERK.value:
        raise PermissionDenied("仅窗口工作人员可查询他人社保卡")
    try:
        number = validate_id_number(id_number)
    except ValueError as e:
        raise ValidationFailed(str(e), errors=[{"field": "id_number", "message": str(e)}]) from e
    return list(
        session.scalars(
            select(Card)
            .where(
                Card.holder_id_number == number,
                Card.jurisdiction_code == clerk.jurisdiction_code,
            )
            .order_by(Card.issued_at.desc(), Card.id)
        )
    )


def find_replacements(session: Session, card: Card) -> list[Card]:
    """The cards made to replace `card` (at most one), newest first."""
    return list(
        session.scalars(
            select(Card).where(Card.replaces_id == card.id).order_by(Card.issued_at.desc())
        )
    )


# --- issuing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who a new card is for."""

    id_number: str
    name: str
    city_code: str
    account_id: uuid.UUID | None = None
    concessions: int = 0


def holder_of(account: Account, concessions: int = 0) -> Holder:
    """The holder facts of a resident account."""
    if not account.id_number or not account.city_code:
        raise ValidationFailed("该账户缺少身份证件号码或所在城市，无法制卡")
    return Holder(
        account.id_number, account.display_name, account.city_code, account.id, concessions
    )


def _new_number(session: Session, city_code: str) -> str:
    # Gapless: card numbers are printed and issued as a series (kernel.numbering).
    seq = numbering.next_value(session, f"card:{city_code}", gapless=True)
    return domain.card_number(city_code, seq)


def issue(
    session: Session,
    holder: Holder,
    actor: Account | Who | None = None,
    *,
    generation: Generation = Generation.THIRD,
    transport: bool = True,
    replaces: Card | None = None,
    reason: str = "",
) -> Card:
    """A new normal card for `holder`, numbered in its city, with its first event."""
    city = regions.get_city(session, holder.city_code)
    if holder.concessions & ~domain.CONCESSION_MASK:
        raise ValidationFailed("优待类别无效", errors=[{"field": "concessions", "message": "无效"}])
    card = Card(
        number=_new_number(session, city.code),
        jurisdiction_code=city.jurisdiction_code,
        city_code=city.code,
        holder_account_id=holder.account_id,
        holder_id_number=holder.id_number,
        holder_name=holder.name,
        birth_date=domain.birth_date_of(holder.id_number),
        concessions=int(holder.concessions),
        generation=int(generation),
        transport=transport and generation >= Generation.THIRD,
        state=CardStatus.NORMAL.value,
        issued_at=utcnow(),
        replaces_id=replaces.id if replaces is not None else None,
    )
    session.add(card)
    session.flush()
    payload = {"number": card.number, "generation": card.generation, "transport": card.transport}
    if replaces is not None:
        payload["replaces"] = replaces.number
    history.record(session, card, CardAction.ISSUE, actor, None, CardStatus.NORMAL, reason, payload)
    return card


# --- acting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What an action did: the card acted on and, for 补换, its replacement."""

    card: Card
    replacement: Card | None = None


def act(
    session: Session, user: Account, card_id: uuid.UUID, action: str, reason: str = ""
) -> Outcome:
    """`user` takes `action` (report_lost, found, replace, cancel) on a card: the machine
    decides (state, who, a reason where one is needed), the event is recorded, and a
    replacement is a new card naming the old one. Raises NotFound (a card `user` may not
    see), ValidationFailed (an unknown action, a missing reason), IllegalTransition,
    ConcurrentChange."""
    card = get_for(session, user, card_id)
    try:
        step = CardAction(action)
    except ValueError:
        raise ValidationFailed(
            "未知的操作", errors=[{"field": "action", "message": "未知的操作"}]
        ) from None
    if step in (CardAction.ISSUE, CardAction.ENROL):
        raise ValidationFailed("未知的操作", errors=[{"field": "action", "message": "未知的操作"}])
    kind = actor_kind(user, card)
    reason = reason.strip()
    current = CardStatus(card.state)
    target = domain.MACHINE.next_state(current, step, kind, StepFacts(reason))
    replacement = None
    if step is CardAction.REPLACE:
        holder = Holder(
            card.holder_id_number,
            card.holder_name,
            card.city_code,
            card.holder_account_id,
            card.concessions,
        )
        replacement = issue(session, holder, user, replaces=card, reason=reason or "补换新卡")
    payload = {"replacement": replacement.number} if replacement is not None else None
    # The card's version is checked when this event is flushed: of two requests that
    # read it in one state, the second fails here (409) and its replacement rolls back.
    card.state = target.value
    history.record(session, card, step, user, current, target, reason, payload)
    if (current in domain.REVOKED_STATUSES) != (target in domain.REVOKED_STATUSES):
        # Its credentials enter (or leave, when found) the revocation list.
        federation.revocations_changed(session, card.jurisdiction_code)
    return Outcome(card, replacement)


# --- the demo ----------------------------------------------------------------------------

#: Concessions of some demo residents, so the demo shows the categories.
DEMO_CONCESSIONS = {"chenjie": Concession.BLOOD_DONOR}


def load_demo_cards(session: Session) -> int:
    """A third-generation card for every proven resident of a jurisdiction this node
    serves who has none yet (idempotent); how many were made."""
    from tongban.exchange import service as exchange

    made = 0
    residents = session.scalars(
        select(Account)
        .where(Account.role == Role.RESIDENT.value, Account.id_number.is_not(None))
        .order_by(Account.username)
    )
    for account in residents:
        if not account.city_code or not account.jurisdiction_code or not is_proven(account):
            continue
        if not exchange.serves_here(session, account.jurisdiction_code):
            continue
        if session.scalar(
            select(Card.id).where(Card.holder_id_number == account.id_number).limit(1)
        ):
            continue
        holder = holder_of(account, int(DEMO_CONCESSIONS.get(account.username, 0)))
        issue(session, holder, None, reason="演示数据：已制卡")
        made += 1
    return made
