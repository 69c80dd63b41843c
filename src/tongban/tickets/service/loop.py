"""The closed loop: dispatch → accept or return (退单) → handle → fix → verify → the
reporter's feedback → closed, or reopened to the authority that owns the fix."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.errors import Conflict, PermissionDenied, ValidationFailed
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.regions.models import Authority
from tongban.tickets import deadlines, domain
from tongban.tickets.domain import Action, Actor, Resolution, TicketState
from tongban.tickets.models import WorkOrder
from tongban.tickets.service import common, findings, journal
from tongban.tickets.service.photos import attach_photos


def start_clock(session: Session, wo: WorkOrder) -> None:
    """(Re)start the handling deadline of `wo` from now, by its category, urgency and
    place, in working time."""
    rule = common.taxonomy(session).deadline_rule(
        wo.category_code, wo.urgency, wo.jurisdiction_code, wo.city_code
    )
    start = common.now()
    is_workday = common.workday_predicate(session)
    hours = common.working_hours(session)
    wo.due_at = deadlines.due_at(start, rule, is_workday, hours)
    wo.allotted_minutes = deadlines.working_minutes_between(start, wo.due_at, is_workday, hours)
    wo.deadline_rule = rule.label
    wo.deadline_flag = "ok"
    wo.reminded_at = None
    wo.escalation_level = 0


def _transition(
    session: Session,
    wo: WorkOrder,
    action: Action,
    kind: Actor,
    actor: Account | None,
    comment: str,
    facts: domain.StepFacts | None = None,
) -> TicketState:
    if facts is None:
        facts = domain.StepFacts(comment=comment)
    # 409 if illegal, 422 if a reason or evidence the step needs is missing
    target = domain.next_state(TicketState(wo.state), action, kind, facts)
    from_state = wo.state
    wo.state = target.value
    journal.record(session, wo, action.value, from_state, target.value, actor, comment)
    return target


def dispatch_to(
    session: Session,
    wo: WorkOrder,
    authority: Authority,
    actor: Account | None,
    action: Action,
    comment: str,
) -> None:
    """Send `wo` to `authority` (the lead) and start its clock; the lead and every
    co-handler are told."""
    kind = Actor.SYSTEM if actor is None else Actor.DISPATCHER
    wo.authority_id = authority.id
    wo.authority_name = authority.name
    wo.dispatched_at = common.now()
    wo.accepted_at = None
    _transition(session, wo, action, kind, actor, comment)
    start_clock(session, wo)
    common.notify(
        session, wo, "dispatched", f"新派工单 {wo.number}（主办）", authority_id=authority.id
    )
    for p in wo.parties:
        if p.authority_id != authority.id:
            common.notify(
                session,
                wo,
                "dispatched",
                f"跨界联办工单 {wo.number}（协办，主办：{authority.name}）",
                authority_id=p.authority_id,
            )


def act(
    session: Session,
    actor: Account,
    wo_id: uuid.UUID,
    action: Action | str,
    comment: str = "",
    *,
    authority_code: str | None = None,
    photo_ids: list[uuid.UUID] | None = None,
) -> WorkOrder:
    """One step of the loop by whoever may take it: the lead authority accepts, returns,
    starts, fixes (with evidence photos); the dispatcher reviews returns and verifies
    fixes; the reporter (or the hotline, for a caller) says whether they are satisfied."""
    try:
        action = Action(action)
    except ValueError:
        raise ValidationFailed(
            "未知的办理动作", errors=[{"field": "action", "message": "不是允许的取值"}]
        ) from None
    wo = common.get(session, actor, wo_id)
    kind = common.actor_kind(actor, wo)
    if kind is None:
        raise PermissionDenied("您不是该工单的办理方", type="not-a-party")
    comment = comment.strip()
    facts = domain.StepFacts(comment=comment, photos=len(photo_ids or []))
    domain.next_state(TicketState(wo.state), action, kind, facts)  # before any write
    now = common.now()
    if action is Action.REDISPATCH:
        if not authority_code:
            raise ValidationFailed(
                "改派须选择承办部门",
                errors=[{"field": "authority_code", "message": "请选择改派部门"}],
            )
        target = regions.authority_by_code(session, authority_code)
        if target.id == wo.authority_id:
            raise ValidationFailed(
                "改派部门不能与原承办部门相同",
                errors=[{"field": "authority_code", "message": "请选择其他部门"}],
            )
        dispatch_to(session, wo, target, actor, action, comment or f"改派至{target.name}")
        return wo
    if action in domain.EVIDENCE_REQUIRED:
        attach_photos(session, actor, wo, photo_ids or [], "evidence")
    target_state = _transition(session, wo, action, kind, actor, comment, facts)
    if action is Action.ACCEPT:
        wo.accepted_at = now
    elif action is Action.RETURN:
        common.notify(
            session, wo, "returned", f"工单 {wo.number} 被{wo.authority_name}退单：{comment}"
        )
    elif action is Action.REJECT_RETURN:
        common.notify(
            session,
            wo,
            "return_rejected",
            f"工单 {wo.number} 退单被驳回：{comment}",
            authority_id=wo.authority_id,
        )
    elif action in (Action.FIX, Action.PARTLY_FIX):
        wo.fixed_at = now
        wo.on_time = wo.due_at is None or now <= wo.due_at
        wo.resolution = (
            Resolution.FIXED.value if action is Action.FIX else Resolution.PARTLY_FIXED.value
        )
        wo.deadline_flag = "ok"
        common.tell_reporters(session, wo, "fixed", "承办部门已处置完毕，正在核查")
    elif action is Action.REJECT_FIX:
        common.notify(
            session,
            wo,
            "fix_rejected",
            f"工单 {wo.number} 核查不通过：{comment}",
            authority_id=wo.authority_id,
        )
    elif action is Action.VERIFY:
        wo.verified_at = now
        common.tell_reporters(session, wo, "verified", "已处置并经核查，请评价是否满意")
    elif action is Action.SATISFIED:
        wo.satisfied = True
        wo.closed_at = now
        common.tell_reporters(session, wo, "closed", "已结案，感谢您的反映")
    elif action is Action.UNSATISFIED:
        wo.satisfied = False
        wo.reopen_count += 1
        wo.on_time = None
        wo.fixed_at = None
        wo.verified_at = None
        start_clock(session, wo)
        common.notify(
            session,
            wo,
            "reopened",
            f"工单 {wo.number} 反映人不满意，已退回重新办理：{comment}",
            authority_id=wo.authority_id,
        )
        common.tell_reporters(session, wo, "reopened", "已退回承办部门重新办理")
    elif action is Action.INVALIDATE:
        wo.resolution = Resolution.INVALID.value
        wo.closed_at = now
    if target_state in domain.TERMINAL:
        wo.deadline_flag = "ok"
    return wo


def close_without_feedback(session: Session, wo: WorkOrder) -> None:
    """The worker closes a verified work order whose reporter gave no feedback in time."""
    _transition(
        session, wo, Action.CLOSE_NO_FEEDBACK, Actor.SYSTEM, None, "反映人逾期未评价，自动结案"
    )
    wo.closed_at = common.now()


def co_note(session: Session, actor: Account, wo_id: uuid.UUID, comment: str) -> WorkOrder:
    """A co-handling (or the lead) authority records its findings on a joint work order.
    On a replica (led on another node) the finding is sent to the lead's node, which
    records it; it shows here when that event comes back."""
    wo = common.get(session, actor, wo_id)
    if wo.replica:
        if not common.is_co_handler(actor, wo):
            raise PermissionDenied("只有协办部门可以填写联办意见")
        if not comment.strip():
            raise ValidationFailed(
                "请填写联办意见", errors=[{"field": "comment", "message": "必填"}]
            )
        if TicketState(wo.state) in domain.TERMINAL:
            raise Conflict("工单已结案", type="illegal-transition")
        findings.send_finding(session, actor, wo, comment.strip())
        return wo
    if not (common.is_co_handler(actor, wo) or common.actor_kind(actor, wo) is Actor.AUTHORITY):
        raise PermissionDenied("只有主办或协办部门可以填写联办意见")
    if not comment.strip():
        raise ValidationFailed("请填写联办意见", errors=[{"field": "comment", "message": "必填"}])
    if TicketState(wo.state) in domain.TERMINAL:
        raise Conflict("工单已结案", type="illegal-transition")
    journal.record(session, wo, "co_note", wo.state, wo.state, actor, comment.strip())
    return wo


def available_actions(actor: Account, wo: WorkOrder) -> list[Action]:
    kind = common.actor_kind(actor, wo)
    if kind is None:
        return []
    return domain.allowed_actions(TicketState(wo.state), kind)


def list_work_orders(
    session: Session,
    actor: Account,
    *,
    state: str | None = None,
    states: list[str] | None = None,
    deadline_flag: str | None = None,
    q: str | None = None,
    role: str | None = None,
    limit: int = 200,
) -> list[WorkOrder]:
    """The work orders `actor` may see, the most urgent first for staff, the newest first
    for reporters. `role` = lead | co narrows an authority's list."""
    clause = common.visible_clause(actor)
    if clause is None:
        raise PermissionDenied("当前账户无权查看工单")
    stmt = select(WorkOrder).where(clause)
    if state:
        stmt = stmt.where(WorkOrder.state == state)
    if states:
        stmt = stmt.where(WorkOrder.state.in_(states))
    if deadline_flag:
        stmt = stmt.where(WorkOrder.deadline_flag == deadline_flag)
    if role == "lead" and actor.authority_id:
        stmt = stmt.where(WorkOrder.authority_id == actor.authority_id)
    elif role == "co" and actor.authority_id:
        stmt = stmt.where(WorkOrder.authority_id != actor.authority_id)
    if q:
        stmt = stmt.where(
            or_(
                WorkOrder.number.contains(q),
                WorkOrder.description.contains(q),
                WorkOrder.address.contains(q),
            )
        )
    if actor.role in ("resident", "enterprise", "grid_inspector"):
        stmt = stmt.order_by(WorkOrder.created_at.desc())
    else:
        stmt = stmt.order_by(WorkOrder.due_at.is_(None), WorkOrder.due_at, WorkOrder.created_at)
    return list(session.scalars(stmt.limit(limit)))


def redispatch_choices(session: Session, wo: WorkOrder) -> list[Any]:
    """Authorities a dispatcher may re-dispatch to: the city's own."""
    return [a for a in regions.list_authorities(session, city_code=wo.city_code)]
