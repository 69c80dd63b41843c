"""Uses of codes at gates, stored and forwarded exactly once. Never commits.

A gate keeps each verdict in its own outbox and uploads it when it can (gate.py) under
the id it gave it; this node stores a use once whatever the number of uploads (its id is
the primary key), links it to the card when the card lives here, and otherwise sends it
once (`card.used`, through the exchange's outbox) to the node of the card's
jurisdiction, which stores it once too (same id) and links it to the card: the holder's
用卡记录. A gate learns no card number, and neither does the gate's node: only the
reference the credential carried, which the card's node maps to the card."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.card.benefits import BadRules, Venue, venue, venues
from tongban.card.cards import list_mine
from tongban.card.federation import CARD_USED
from tongban.card.models import CardCredential, CardGate, CardUse
from tongban.card.verifier import Refusal
from tongban.errors import ValidationFailed
from tongban.exchange import schema
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.regions.models import City

#: How far back a gate may ask for the codes its operator's other gates admitted.
SEEN_HORIZON = timedelta(minutes=10)
#: Most uses one upload may carry.
MAX_BATCH = 1000

Ref = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
Short = Annotated[str, StringConstraints(max_length=120)]
Why = Annotated[str, StringConstraints(max_length=300)]
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,20}$")]


class UseIn(schema.Payload):
    """A use as a gate uploads it, and as `card.used` carries it."""

    id: schema.Uuid
    venue_code: Annotated[str, StringConstraints(pattern=r"^[0-9a-z_-]{1,60}$")]
    used_at: schema.Instant
    code_time: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    admitted: bool
    reason: ReasonCode | None = None
    card_jurisdiction: schema.RegionCode | None = None
    #: The holder's city as the credential says (for the figures per city pair); gates
    #: older than it leave it out.
    card_city: schema.RegionCode | None = None
    card_ref: Ref | None = None
    rule: Annotated[str, StringConstraints(max_length=80)] | None = None
    benefit: Short | None = None
    why: Why | None = None
    flagged: bool = False


class CardUsed(UseIn):
    """`card.used`: a use at `gate_id` of a venue in `venue_city`."""

    gate_id: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
    venue_name: Short
    venue_city: schema.RegionCode


@dataclass(frozen=True)
class Stored:
    stored: int
    duplicates: int


def _jurisdiction_of_city(session: Session, city: str) -> str:
    row = session.get(City, city)
    if row is None:
        raise ValidationFailed(f"未知城市 {city}")
    return row.jurisdiction_code


def _card_for(session: Session, ref: str | None) -> uuid.UUID | None:
    if ref is None:
        return None
    return session.scalar(select(CardCredential.card_id).where(CardCredential.ref == ref))


def _check(u: UseIn, gate: CardGate) -> None:
    if u.venue_code != gate.venue_code:
        raise ValidationFailed(
            f"闸机 {gate.gate_id} 属于 {gate.venue_code}，不能上传 {u.venue_code} 的记录",
            errors=[{"field": "uses.venue_code", "message": "与闸机登记的场所不符"}],
        )
    if u.admitted == (u.reason is not None):
        raise ValidationFailed(
            "通过的记录不带拒绝原因，拒绝的记录必须带原因",
            errors=[{"field": "uses.reason", "message": "与结果不符"}],
        )
    if u.reason is not None and u.reason not in {r.value for r in Refusal}:
        raise ValidationFailed(
            f"未知的拒绝原因 {u.reason}", errors=[{"field": "uses.reason", "message": "未知"}]
        )
    if (u.card_ref is None) != (u.card_jurisdiction is None):
        raise ValidationFailed(
            "卡的辖区与引用须同时给出", errors=[{"field": "uses.card_ref", "message": "不完整"}]
        )


def store_uploaded(session: Session, gate: CardGate, uses: Sequence[UseIn]) -> Stored:
    """Store a gate's uploaded uses (each once, by id) and forward each new one about a
    card of another node's jurisdiction to that node, once."""
    if len(uses) > MAX_BATCH:
        raise ValidationFailed(f"一次最多上传 {MAX_BATCH} 条记录")
    for u in uses:
        _check(u, gate)
    place = venue(gate.venue_code)
    stored = duplicates = 0
    for u in uses:
        if session.get(CardUse, u.id) is not None:
            duplicates += 1
            continue
        keep_use(session, u, gate.gate_id, place, flush=False)
        stored += 1
    session.flush()
    return Stored(stored, duplicates)


def keep_use(
    session: Session,
    u: UseIn,
    gate_id: str,
    place: Venue,
    *,
    flush: bool = True,
    forward: bool = True,
) -> CardUse:
    """Store a new use at `place` and, when the card lives on another node, send it
    there once (`card.used`; not with `forward=False`: the demo's synthetic cards, which
    no node holds)."""
    row = _row(session, u, gate_id, place.name, place.city)
    session.add(row)
    target = u.card_jurisdiction
    if forward and target is not None and not exchange.serves_here(session, target):
        source = _jurisdiction_of_city(session, place.city)
        exchange.send(session, CARD_USED, source, target, _payload(row))
    if flush:
        session.flush()
    return row


def _row(session: Session, u: UseIn, gate_id: str, venue_name: str, venue_city: str) -> CardUse:
    return CardUse(
        id=u.id,
        gate_id=gate_id,
        venue_code=u.venue_code,
        venue_name=venue_name,
        venue_city=venue_city,
        card_jurisdiction=u.card_jurisdiction,
        card_city=u.card_city,
        card_ref=u.card_ref,
        card_id=_card_for(session, u.card_ref),
        used_at=u.used_at,
        code_time=u.code_time,
        admitted=u.admitted,
        reason=u.reason,
        rule=u.rule,
        benefit=u.benefit,
        why=u.why,
        flagged=u.flagged,
    )


def _payload(row: CardUse) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "gate_id": row.gate_id,
        "venue_code": row.venue_code,
        "venue_name": row.venue_name,
        "venue_city": row.venue_city,
        "used_at": row.used_at.isoformat(),
        "code_time": row.code_time,
        "admitted": row.admitted,
        "reason": row.reason,
        "card_jurisdiction": row.card_jurisdiction,
        "card_city": row.card_city,
        "card_ref": row.card_ref,
        "rule": row.rule,
        "benefit": row.benefit,
        "why": row.why,
        "flagged": row.flagged,
    }


def authorise_use(session: Session, p: CardUsed, sender: exchange.Sender) -> None:
    """A use is sent by the node of the venue's jurisdiction, to the node of the card's."""
    venue_jurisdiction = _jurisdiction_of_city(session, p.venue_city)
    sender.require(venue_jurisdiction, "场所所在辖区")
    if venue_jurisdiction != sender.source_jurisdiction:
        raise exchange.Refused("not-allowed", "场所所在辖区须为消息的来源辖区")
    if p.card_jurisdiction is None or p.card_jurisdiction != sender.target_jurisdiction:
        raise exchange.Refused("not-allowed", "用卡记录须发往卡所属辖区")
    if not exchange.serves_here(session, p.card_jurisdiction):
        raise exchange.Refused("not-allowed", f"本节点不为 {p.card_jurisdiction} 发卡")


@exchange.handler(CARD_USED, schema=CardUsed, authorise=authorise_use)
def on_card_used(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """Keep a use of one of this node's cards at another node's gate, once."""
    u = CardUsed.model_validate(payload, strict=False)
    if session.get(CardUse, u.id) is not None:
        return
    session.add(_row(session, u, u.gate_id, u.venue_name, u.venue_city))
    session.flush()


# --- reading ---------------------------------------------------------------------------------


def history_of(session: Session, user: Account, limit: int = 100) -> list[CardUse]:
    """The holder's uses of their cards, newest first."""
    ids = [c.id for c in list_mine(session, user)]
    if not ids:
        return []
    return list(
        session.scalars(
            select(CardUse)
            .where(CardUse.card_id.in_(ids))
            .order_by(CardUse.used_at.desc(), CardUse.id)
            .limit(limit)
        )
    )


def seen_by_operator(session: Session, gate: CardGate, since: datetime) -> list[tuple[str, int]]:
    """(reference, code time) of the codes admitted at the other gates of `gate`'s
    operator since `since` (at most SEEN_HORIZON ago): a gate adds them to its replay
    store, so one code is not admitted at two gates of one operator once their records
    have met."""
    try:
        operator = venue(gate.venue_code).operator
    except BadRules:
        return []
    codes = [v.code for v in venues().values() if v.operator == operator]
    # Every use at the operator's venues but this gate's own: its other gates' uploads
    # and the venue staff's scans (scanning.py).
    rows = session.execute(
        select(CardUse.card_ref, CardUse.code_time).where(
            CardUse.venue_code.in_(codes),
            CardUse.gate_id != gate.gate_id,
            CardUse.admitted.is_(True),
            CardUse.card_ref.is_not(None),
            CardUse.code_time.is_not(None),
            CardUse.used_at >= since,
        )
    )
    return [(ref, t) for ref, t in rows if ref is not None and t is not None]
