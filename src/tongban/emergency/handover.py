"""Hand-over of a person-related case (协查移交) to the competent jurisdiction, e.g. a
close contact (密接) who travelled to another city: purpose-bound and minimised like
evidence exchange, in the person's data-use log, accepted or refused by the receiver,
and owned by exactly one jurisdiction at any moment (docs/emergency.md "Hand-overs").

The protocol, every message durable in the outbox, idempotent by id and in one lane per
hand-over (`handover:<id>`):

1. offer — the sender's node creates the record (owner = sender, `offered`) and shares
   its snapshot with the receiver's jurisdiction (kernel Copies);
2. answer — a coordinator of the receiver answers on the receiver's copy; the answer is
   kept on the copy and queued as `emergency.handover.answer` to the sender in one
   transaction; the copy shows 接收中 and nobody there may act;
3. commit — the sender's node applies the answer to its record: acceptance commits the
   transfer (`accept`: owner = receiver, `transferred`), a refusal records `refuse`; an
   answer to an offer no longer `offered` (withdrawn) changes nothing;
4. tell — the change reaches the receiver's copy, which only then names the receiver as
   owner, and its coordinators may act.

Only the sender's node writes the shared history (one writer, so both copies number
events alike); after the transfer the receiver's own follow-ups stay on its node."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.db import utcnow
from tongban.emergency import access, messages
from tongban.emergency.domain import Duty
from tongban.emergency.domain import incidents as domain
from tongban.emergency.domain.incidents import HandoverAction, HandoverState, Side
from tongban.emergency.incidents_models import Handover
from tongban.emergency.record_copies import (
    as_uuid,
    follow_state,
    from_iso,
    iso,
    new_copy,
    record_copies,
)
from tongban.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.evidence import service as evidence
from tongban.exchange import schema as s
from tongban.exchange import service as exchange
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import history, numbering, replication
from tongban.kernel.history import Who
from tongban.regions import service as regions

ANSWER = "emergency.handover.answer"

KIND = evidence.DataUseKind(
    "emergency_handover", "突发事件协查移交", tuple(domain.FIELD_LABELS.items())
)
evidence.declare_data_use(
    KIND, [evidence.DataUsePurpose(p.code, p.label) for p in domain.PURPOSES.values()]
)

# --- messages -------------------------------------------------------------------------------

Number = Annotated[str, StringConstraints(pattern=r"^YJ[0-9]{18}$")]
Field200 = Annotated[str, StringConstraints(max_length=200)]


class HandoverShared(s.Payload):
    handover_id: s.Uuid
    number: Number
    incident_id: s.Uuid | None
    incident_number: Annotated[str, StringConstraints(pattern=r"^SJ[0-9]{18}$")] | None
    purpose: Annotated[str, StringConstraints(max_length=30)]
    reason: s.ShortText
    sender_jurisdiction: s.RegionCode
    sender_city: s.RegionCode
    receiver_jurisdiction: s.RegionCode
    receiver_city: s.RegionCode
    owner_jurisdiction: s.RegionCode
    subject: Annotated[
        dict[Annotated[str, StringConstraints(max_length=30)], Field200], Field(max_length=10)
    ]
    state: HandoverState
    created_at: s.Instant
    transferred_at: s.Instant | None
    events: Annotated[list[replication.EventIn], Field(min_length=1, max_length=1000)]


class HandoverChanged(s.Payload):
    handover_id: s.Uuid
    number: Number
    seq: s.Seq
    event: replication.EventIn
    state: HandoverState
    owner_jurisdiction: s.RegionCode
    transferred_at: s.Instant | None
    updated_at: s.Instant


class HandoverAnswer(s.Payload):
    handover_id: s.Uuid
    number: Number
    answer: Literal["accept", "refuse"]
    note: s.ShortText
    answered_by: Annotated[str, StringConstraints(max_length=80)]
    answered_at: s.Instant


def _bad(detail: str) -> exchange.Refused:
    return exchange.Refused("bad-payload", detail, 422)


def _owner_consistent(state: HandoverState, owner: str, sender: str, receiver: str) -> None:
    want = receiver if domain.owner_side(state) is Side.RECEIVER else sender
    if owner != want:
        raise _bad("移交状态与负责辖区不符")


def _check_shared(session: Session, p: HandoverShared, sender: exchange.Sender) -> None:
    if sender.target_jurisdiction != p.receiver_jurisdiction:
        raise exchange.Refused("not-allowed", "协查移交只发给接收方")
    for city, j in (
        (p.sender_city, p.sender_jurisdiction),
        (p.receiver_city, p.receiver_jurisdiction),
    ):
        if regions.get_city(session, city).jurisdiction_code != j:
            raise _bad(f"城市 {city} 不属于 {j}")
    try:
        if domain.minimise(p.purpose, dict(p.subject)) != dict(p.subject):
            raise _bad("移交信息超出移交目的所需")
    except ValidationFailed as e:
        raise _bad(f"移交信息不符合移交目的：{e}") from e
    _owner_consistent(p.state, p.owner_jurisdiction, p.sender_jurisdiction, p.receiver_jurisdiction)
    for ev in p.events:
        messages.check_step(domain.HANDOVER_MACHINE, HandoverAction.OFFER.value, ev)


def _check_changed(
    session: Session, p: HandoverChanged, sender: exchange.Sender, rec: Handover
) -> None:
    messages.check_step(domain.HANDOVER_MACHINE, HandoverAction.OFFER.value, p.event)
    _owner_consistent(
        p.state, p.owner_jurisdiction, rec.sender_jurisdiction, rec.receiver_jurisdiction
    )


def _snapshot(session: Session, h: Handover) -> dict[str, Any]:
    return {
        "handover_id": str(h.id),
        "number": h.number,
        "incident_id": str(h.incident_id) if h.incident_id else None,
        "incident_number": h.incident_number,
        "purpose": h.purpose,
        "reason": h.reason,
        "sender_jurisdiction": h.sender_jurisdiction,
        "sender_city": h.sender_city,
        "receiver_jurisdiction": h.receiver_jurisdiction,
        "receiver_city": h.receiver_city,
        "owner_jurisdiction": h.owner_jurisdiction,
        "subject": dict(h.subject),
        "state": h.state,
        "created_at": h.created_at.isoformat(),
        "transferred_at": iso(h.transferred_at),
    }


def _change(session: Session, h: Handover, ev: history.EventRow) -> dict[str, Any]:
    return {
        "handover_id": str(h.id),
        "number": h.number,
        "state": h.state,
        "owner_jurisdiction": h.owner_jurisdiction,
        "transferred_at": iso(h.transferred_at),
        "updated_at": h.updated_at.isoformat(),
    }


def _create(session: Session, p: Mapping[str, Any]) -> Handover:
    h = Handover(
        **new_copy(p, "handover_id"),
        incident_id=as_uuid(p["incident_id"]) if p["incident_id"] else None,
        incident_number=p["incident_number"],
        purpose=p["purpose"],
        reason=p["reason"],
        sender_jurisdiction=p["sender_jurisdiction"],
        sender_city=p["sender_city"],
        receiver_jurisdiction=p["receiver_jurisdiction"],
        receiver_city=p["receiver_city"],
        owner_jurisdiction=p["owner_jurisdiction"],
        subject={str(k): str(v) for k, v in dict(p["subject"]).items()},
        transferred_at=from_iso(p["transferred_at"]),
    )
    session.add(h)
    return h


def _follow(session: Session, h: Handover, p: Mapping[str, Any]) -> None:
    follow_state(h, p)
    h.owner_jurisdiction = str(p["owner_jurisdiction"])
    h.transferred_at = from_iso(p["transferred_at"])


def _lane(p: Mapping[str, Any]) -> str:
    return f"handover:{p['handover_id']}"


HANDOVERS: replication.Copies[Handover] = record_copies(
    Handover,
    "handover",
    "协查移交",
    snapshot_schema=HandoverShared,
    change_schema=HandoverChanged,
    create=_create,
    follow=_follow,
    snapshot=_snapshot,
    change=_change,
    # One writer of the shared history in every state: the sender's node.
    writer="sender_jurisdiction",
    check_snapshot=_check_shared,
    lane=_lane,
    check_change=_check_changed,
)


def _on_snapshot(session: Session, h: Handover, created: bool, payload: Any, msg: Any) -> None:
    if created:
        _log_use(session, h, str(payload["events"][0]["actor_name"]))


replication.register(HANDOVERS, on_snapshot=_on_snapshot)


def _authorise_answer(session: Session, p: HandoverAnswer, sender: exchange.Sender) -> None:
    h = session.get(Handover, p.handover_id)
    if h is None or h.replica or h.number != p.number:
        raise exchange.Refused("not-allowed", f"本节点不是协查移交 {p.number} 的移交方")
    sender.require(h.receiver_jurisdiction, f"协查移交 {h.number} 的接收方")
    if sender.source_jurisdiction != h.receiver_jurisdiction:
        raise exchange.Refused("not-allowed", "只有接收方可以答复协查移交")


exchange.lane(ANSWER, _lane)


@exchange.handler(ANSWER, schema=HandoverAnswer, authorise=_authorise_answer)
def on_answer(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """The sender's node commits what the receiver answered — once, and only while the
    offer stands (an answer to a withdrawn offer changes nothing)."""
    h = session.get(Handover, as_uuid(payload["handover_id"]))
    assert h is not None  # authorised above
    if h.state != HandoverState.OFFERED:
        return
    j = regions.get_jurisdiction(session, h.receiver_jurisdiction)
    who = Who(None, f"{payload['answered_by']}（{j.name}）"[:80], "receiver")
    action = HandoverAction.ACCEPT if payload["answer"] == "accept" else HandoverAction.REFUSE
    _step(session, h, action, who, str(payload["note"]))


# --- steps ---------------------------------------------------------------------------------


def _step(
    session: Session,
    h: Handover,
    action: HandoverAction,
    who: Who,
    note: str,
    side: Side = Side.SENDER,
) -> None:
    before = HandoverState(h.state)
    target = domain.HANDOVER_MACHINE.next_state(before, action, side)
    h.state = target.value
    h.updated_at = utcnow()
    if target is HandoverState.TRANSFERRED and before is not target:
        # The one write that moves ownership: the sender's record, in this transaction.
        h.owner_jurisdiction = h.receiver_jurisdiction
        h.transferred_at = h.updated_at
    ev = history.record(session, h, action.value, who, before.value, target.value, note)
    if side is Side.SENDER:
        replication.share(
            session, HANDOVERS, h, ev, h.sender_jurisdiction, [h.receiver_jurisdiction]
        )


def _log_use(session: Session, h: Handover, operator: str) -> None:
    """The disclosure in the person's 我的数据使用记录, on every node holding the record
    (keyed by the hand-over: never logged twice)."""
    city = regions.get_city(session, h.receiver_city)
    evidence.record_data_use(
        session,
        use_id=h.id,
        subject_identifier=h.subject.get("id_number", ""),
        subject_name=h.subject.get("name", ""),
        user_code=f"emergency:{h.receiver_city}",
        user_name=f"{city.name}突发事件应急指挥（协查接收方）",
        user_jurisdiction=h.receiver_jurisdiction,
        operator_name=operator,
        kind=KIND.code,
        purpose=h.purpose,
        holder_jurisdiction=h.sender_jurisdiction,
        answered=True,
        requested_at=h.created_at,
        reference=h.number,
        matter_name=domain.PURPOSES[h.purpose].label,
        fields=list(h.subject),
    )


def offer(
    session: Session,
    actor: Account,
    *,
    sender_city: str,
    receiver_city: str,
    purpose: str,
    reason: str,
    subject: dict[str, str],
    incident_id: uuid.UUID | None = None,
) -> Handover:
    """A coordinator of `sender_city` offers a person's case to the coordinators of
    `receiver_city`, carrying only what `purpose` needs; the sender keeps owning it
    until the receiver accepts and the sender's node commits the transfer."""
    city = regions.get_city(session, sender_city)
    if not exchange.serves_here(session, city.jurisdiction_code):
        raise PermissionDenied(f"{city.name}不由本节点服务", type="not-served-here")
    access.require(session, actor, Duty.COORDINATOR, city.jurisdiction_code, city.code)
    errors = []
    to = None
    try:
        to = regions.get_city(session, receiver_city)
    except NotFound:
        errors.append(FieldError("receiver_city", "接收城市不存在"))
    if to is not None and to.code == city.code:
        errors.append(FieldError("receiver_city", "接收城市不能是本城市"))
    if not reason.strip():
        errors.append(FieldError("reason", "请说明移交事由"))
    if errors:
        raise ValidationFailed("移交信息有误", errors=errors)
    assert to is not None
    data = domain.minimise(purpose, subject)
    incident_number = None
    if incident_id is not None:
        from tongban.emergency.incidents_models import Incident

        inc = session.get(Incident, incident_id)
        if inc is None:
            raise ValidationFailed("事件不存在", errors=[FieldError("incident_id", "事件不存在")])
        incident_number = inc.number
    now = utcnow()
    day = calendar.local_date(now).strftime("%Y%m%d")
    seq = numbering.next_value(session, f"emergency.handover:{city.code}", day)
    h = Handover(
        number=domain.handover_number(city.code, day, seq),
        incident_id=incident_id,
        incident_number=incident_number,
        purpose=purpose,
        reason=reason.strip()[:2000],
        sender_jurisdiction=city.jurisdiction_code,
        sender_city=city.code,
        receiver_jurisdiction=to.jurisdiction_code,
        receiver_city=to.code,
        owner_jurisdiction=city.jurisdiction_code,
        subject=data,
        state=HandoverState.OFFERED.value,
        replica=False,
        offered_by=actor.id,
        created_at=now,
        updated_at=now,
        events=[],
    )
    session.add(h)
    session.flush()
    history.record(
        session,
        h,
        HandoverAction.OFFER.value,
        history.who(actor, kind=Side.SENDER.value),
        None,
        h.state,
        h.reason,
        {"purpose": purpose, "fields": sorted(data)},
    )
    _log_use(session, h, actor.display_name)
    replication.share(session, HANDOVERS, h, None, h.sender_jurisdiction, [h.receiver_jurisdiction])
    return h


def get(session: Session, actor: Account, handover_id: uuid.UUID) -> Handover:
    h = session.get(Handover, handover_id)
    if h is None or not may_see(session, actor, h):
        raise NotFound("协查移交不存在或无权查看", type="unknown-handover")
    return h


def _coordinator_of(session: Session, actor: Account, jurisdiction: str, city: str) -> bool:
    return access.has_duty(session, actor, Duty.COORDINATOR, jurisdiction, city)


def may_see(session: Session, actor: Account, h: Handover) -> bool:
    """The coordinators of both sides; supervisors and the administrator (masked)."""
    if actor.role in (Role.ADMIN, Role.SUPERVISOR):
        return True
    return any(
        j == h.sender_jurisdiction or j == h.receiver_jurisdiction
        for j, _ in access.cities_with(session, actor, Duty.COORDINATOR)
    )


def may_act(session: Session, h: Handover) -> bool:
    """Whether this node's staff may act on the case now: only where the owner named by
    this node's row is served. The sender's row is the authority and changes first, so
    the receiver's node can name itself only after the sender stopped doing so."""
    return exchange.serves_here(session, h.owner_jurisdiction)


def status_here(session: Session, h: Handover, receiving: bool | None = None) -> str:
    """The hand-over as this node's staff see it (Chinese): as the receiver's (by
    default where this row is the receiver's copy; a node serving both sides asks for
    the viewer's side) or the sender's."""
    if receiving is None:
        receiving = h.replica
    receiving = receiving and exchange.serves_here(session, h.receiver_jurisdiction)
    if h.state == HandoverState.OFFERED and receiving:
        if h.answer == "accept":
            return "接收中（已同意接收，待移交方确认）"
        if h.answer == "refuse":
            return "接收中（已拒收，待移交方确认）"
        return "接收中"
    if h.state == HandoverState.TRANSFERRED:
        return "已移交，由接收方负责" if not receiving else "已接收，由本辖区负责"
    return domain.HANDOVER_STATE_LABELS[HandoverState(h.state)]


def answer(
    session: Session, actor: Account, handover_id: uuid.UUID, *, accept: bool, note: str = ""
) -> Handover:
    """A coordinator of the receiving city answers the offer. Nothing changes hands
    here: the answer is queued for the sender, whose node commits (or not) the transfer."""
    h = get(session, actor, handover_id)
    if not exchange.serves_here(session, h.receiver_jurisdiction):
        raise PermissionDenied("只有接收方可以答复协查移交", type="not-receiver")
    if not _coordinator_of(session, actor, h.receiver_jurisdiction, h.receiver_city):
        raise PermissionDenied("须由接收城市的应急调度员答复", type="no-duty")
    if h.state != HandoverState.OFFERED:
        raise Conflict("该移交已办结，不能再答复", type="illegal-transition")
    if h.answer is not None:
        raise Conflict("已答复过该移交", type="already-answered")
    if not accept and not note.strip():
        raise ValidationFailed("拒收须说明理由", errors=[FieldError("note", "请填写拒收理由")])
    h.answer = "accept" if accept else "refuse"
    h.answer_note = note.strip()[:2000]
    with history.guarded():
        session.flush()  # the version guard: of two answers at once, one wins
    exchange.send(
        session,
        ANSWER,
        h.receiver_jurisdiction,
        h.sender_jurisdiction,
        {
            "handover_id": str(h.id),
            "number": h.number,
            "answer": h.answer,
            "note": h.answer_note,
            "answered_by": actor.display_name[:80],
            "answered_at": utcnow().isoformat(),
        },
    )
    return h


def withdraw(session: Session, actor: Account, handover_id: uuid.UUID, reason: str) -> Handover:
    """The sender takes the offer back — only while the transfer is not committed."""
    h = get(session, actor, handover_id)
    _require_sender(session, actor, h)
    if not reason.strip():
        raise ValidationFailed("撤回须说明理由", errors=[FieldError("reason", "请填写撤回理由")])
    _step(session, h, HandoverAction.WITHDRAW, history.who(actor, kind="sender"), reason.strip())
    return h


def follow_up(session: Session, actor: Account, handover_id: uuid.UUID, note: str) -> Handover:
    """A note by the owner (随访/管控记录): the sender's while it owns the case (shared
    with the receiver), the receiver's once the transfer reached it (kept on its node)."""
    h = get(session, actor, handover_id)
    if not note.strip():
        raise ValidationFailed("请填写跟进记录", errors=[FieldError("note", "请填写跟进记录")])
    if not may_act(session, h):
        raise Conflict("本辖区当前不是该案件的负责方（接收中或已移交），不能办理", type="not-owner")
    receiver = h.owner_jurisdiction == h.receiver_jurisdiction
    j, city = (
        (h.receiver_jurisdiction, h.receiver_city)
        if receiver
        else (
            h.sender_jurisdiction,
            h.sender_city,
        )
    )
    if not _coordinator_of(session, actor, j, city):
        other = (
            (h.sender_jurisdiction, h.sender_city)
            if receiver
            else (
                h.receiver_jurisdiction,
                h.receiver_city,
            )
        )
        if _coordinator_of(session, actor, *other):  # the other side, on a node serving both
            raise Conflict(
                "本辖区当前不是该案件的负责方（接收中或已移交），不能办理", type="not-owner"
            )
        raise PermissionDenied("须由负责方的应急调度员办理", type="no-duty")
    side = Side.RECEIVER if receiver else Side.SENDER
    _step(
        session,
        h,
        HandoverAction.FOLLOW_UP,
        history.who(actor, kind=side.value),
        note.strip(),
        side,
    )
    return h


def _require_sender(session: Session, actor: Account, h: Handover) -> None:
    if h.replica or not exchange.serves_here(session, h.sender_jurisdiction):
        raise PermissionDenied("只有移交方可以办理", type="not-sender")
    if not _coordinator_of(session, actor, h.sender_jurisdiction, h.sender_city):
        raise PermissionDenied("须由移交城市的应急调度员办理", type="no-duty")


def list_handovers(session: Session, actor: Account, limit: int = 200) -> list[Handover]:
    """Hand-overs this node holds that the caller may see, newest first."""
    stmt = select(Handover).order_by(Handover.created_at.desc()).limit(limit)
    if actor.role not in (Role.ADMIN, Role.SUPERVISOR):
        mine = {j for j, _ in access.cities_with(session, actor, Duty.COORDINATOR)}
        if not mine:
            return []
        stmt = stmt.where(
            or_(Handover.sender_jurisdiction.in_(mine), Handover.receiver_jurisdiction.in_(mine))
        )
    return list(session.scalars(stmt))


def subject_for(session: Session, actor: Account, h: Handover) -> dict[str, str]:
    """The person's fields as the caller may see them: in full for the coordinators of
    the two sides, the ID number masked for anyone else."""
    if actor.role in (Role.ADMIN, Role.SUPERVISOR):
        return {k: (domain.mask_id(v) if k == "id_number" else v) for k, v in h.subject.items()}
    return dict(h.subject)


def public(session: Session, actor: Account, h: Handover) -> dict[str, Any]:
    """What the API answers about a hand-over on this node (owner and may_act included:
    the fault tests poll them)."""
    return {
        "id": str(h.id),
        "number": h.number,
        "purpose": h.purpose,
        "purpose_label": domain.PURPOSES[h.purpose].label,
        "reason": h.reason,
        "incident_number": h.incident_number,
        "sender_jurisdiction": h.sender_jurisdiction,
        "sender_city": h.sender_city,
        "receiver_jurisdiction": h.receiver_jurisdiction,
        "receiver_city": h.receiver_city,
        "state": h.state,
        "state_label": domain.HANDOVER_STATE_LABELS[HandoverState(h.state)],
        "status_here": status_here(session, h),
        "owner_jurisdiction": h.owner_jurisdiction,
        "authoritative": not h.replica,
        "may_act": may_act(session, h),
        "answer": h.answer,
        "subject": subject_for(session, actor, h),
        "created_at": h.created_at.isoformat(),
        "transferred_at": iso(h.transferred_at),
        "events": [
            {
                "seq": e.seq,
                "action": e.action,
                "action_label": domain.HANDOVER_ACTION_LABELS.get(
                    HandoverAction(e.action), e.action
                ),
                "to_state": e.to_state,
                "actor_name": e.actor_name,
                "comment": e.comment,
                "at": e.at.isoformat(),
            }
            for e in h.events
        ],
    }
