"""Watching deadlines: reminders before, escalation after (the authority's head, then
the supervisor), extensions approved by a supervisor, supervision orders (督办单) that
tighten a deadline and are tracked to their answer."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.localtime import local_dt
from tongban.tickets import deadlines, domain
from tongban.tickets.domain import Actor, TicketState
from tongban.tickets.models import SupervisionOrder, TicketExtension, TicketNotice, WorkOrder
from tongban.tickets.service import common, journal, loop


def _require_supervisor(actor: Account) -> None:
    if actor.role != Role.SUPERVISOR or not actor.jurisdiction_code:
        raise PermissionDenied("只有督查督办人员可以执行此操作")


def _require_lead(actor: Account, wo: WorkOrder) -> None:
    if common.actor_kind(actor, wo) is not Actor.AUTHORITY:
        raise PermissionDenied("只有主办部门可以执行此操作")


# --- the worker's pass -----------------------------------------------------------------


def run_deadlines(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Flag open work orders, remind the authority once when time runs short, escalate
    past the deadline (level 1: the authority's head; level 2: the supervisor), flag
    overdue supervision orders and close verified work orders nobody answered.
    Returns counts of what was done."""
    now = now or common.now()
    s = common.settings(session)
    is_workday = common.workday_predicate(session)
    hours = common.working_hours(session)
    counts = {"reminded": 0, "escalated_head": 0, "escalated_supervisor": 0, "auto_closed": 0}
    running = [st.value for st in domain.CLOCK_RUNNING]
    stmt = select(WorkOrder).where(WorkOrder.state.in_(running), WorkOrder.due_at.is_not(None))
    for wo in session.scalars(stmt):
        assert wo.due_at is not None
        flag = deadlines.deadline_flag(
            now, wo.due_at, wo.allotted_minutes, is_workday, hours, s.warn_fraction
        )
        wo.deadline_flag = flag
        if flag == "approaching" and wo.reminded_at is None:
            wo.reminded_at = now
            common.notify(
                session,
                wo,
                "reminder",
                f"工单 {wo.number} 即将到期（{local_dt(wo.due_at)}），请抓紧办理",
                authority_id=wo.authority_id,
            )
            journal.record(session, wo, "remind", wo.state, wo.state, None, "临期提醒")
            counts["reminded"] += 1
        level = deadlines.escalation_level(
            now, wo.due_at, s.supervisor_after_hours * 60, is_workday, hours
        )
        while wo.escalation_level < level:
            wo.escalation_level += 1
            if wo.escalation_level == 1:
                common.notify(
                    session,
                    wo,
                    "escalation",
                    f"工单 {wo.number} 已超期，请部门负责人督促办理",
                    authority_id=wo.authority_id,
                )
                journal.record(
                    session, wo, "escalate", wo.state, wo.state, None, "超期：升级至部门负责人"
                )
                counts["escalated_head"] += 1
            else:
                common.notify(
                    session,
                    wo,
                    "escalation",
                    f"工单 {wo.number}（{wo.authority_name}）严重超期，请督办",
                    jurisdiction_code=wo.jurisdiction_code,
                )
                journal.record(
                    session, wo, "escalate", wo.state, wo.state, None, "严重超期：升级至督查督办"
                )
                counts["escalated_supervisor"] += 1
    # Verified work orders whose reporter has not answered in time close themselves.
    for wo in session.scalars(
        select(WorkOrder).where(WorkOrder.state == TicketState.VERIFIED.value)
    ):
        if wo.verified_at is None:
            continue
        waited = deadlines.working_minutes_between(wo.verified_at, now, is_workday, hours)
        if waited >= s.feedback_days * hours.minutes_per_day:
            loop.close_without_feedback(session, wo)
            counts["auto_closed"] += 1
    for order in session.scalars(select(SupervisionOrder).where(SupervisionOrder.status == "open")):
        if not order.overdue and now > order.due_at:
            order.overdue = True
            common.notify(
                session,
                None,
                "supervision_overdue",
                f"督办单 {order.number} 已逾期未反馈",
                jurisdiction_code=order.jurisdiction_code,
            )
    session.flush()
    return counts


# --- extensions ----------------------------------------------------------------------------


def request_extension(
    session: Session, actor: Account, wo_id: uuid.UUID, working_days: int, reason: str
) -> TicketExtension:
    """The lead authority asks for more time (1–30 working days), with a reason."""
    wo = common.get(session, actor, wo_id)
    _require_lead(actor, wo)
    if TicketState(wo.state) not in domain.CLOCK_RUNNING:
        raise Conflict("只有办理中的工单可以申请延期", type="illegal-transition")
    errors = []
    if not 1 <= working_days <= 30:
        errors.append({"field": "working_days", "message": "延期天数应为 1 至 30 个工作日"})
    if not reason.strip():
        errors.append({"field": "reason", "message": "请说明延期理由"})
    if errors:
        raise ValidationFailed("延期申请有误", errors=errors)
    pending = session.scalar(
        select(TicketExtension).where(
            TicketExtension.ticket_id == wo.id, TicketExtension.status == "pending"
        )
    )
    if pending is not None:
        raise Conflict("已有待审批的延期申请", type="extension-pending")
    ext = TicketExtension(
        ticket_id=wo.id, requested_by=actor.id, working_days=working_days, reason=reason.strip()
    )
    session.add(ext)
    journal.record(
        session,
        wo,
        "extension_requested",
        wo.state,
        wo.state,
        actor,
        f"申请延期 {working_days} 个工作日：{reason.strip()}",
    )
    common.notify(
        session,
        wo,
        "extension",
        f"工单 {wo.number} 申请延期 {working_days} 个工作日",
        jurisdiction_code=wo.jurisdiction_code,
    )
    session.flush()
    return ext


def decide_extension(
    session: Session, actor: Account, ext_id: uuid.UUID, approve: bool, note: str = ""
) -> TicketExtension:
    """A supervisor of the work order's jurisdiction approves (the deadline moves by the
    working days asked) or refuses an extension."""
    _require_supervisor(actor)
    ext = session.get(TicketExtension, ext_id)
    if ext is None:
        raise NotFound("延期申请不存在")
    wo = common.get(session, actor, ext.ticket_id)
    if wo.jurisdiction_code != actor.jurisdiction_code:
        raise PermissionDenied("只有主办地的督查督办人员可以审批延期")
    if ext.status != "pending":
        raise Conflict("该延期申请已审批", type="extension-decided")
    if not approve and not note.strip():
        raise ValidationFailed("不予延期须说明理由", errors=[{"field": "note", "message": "必填"}])
    ext.status = "approved" if approve else "refused"
    ext.decided_by = actor.id
    ext.decided_at = common.now()
    ext.decision_note = note.strip()
    if approve and wo.due_at is not None:
        ext.previous_due_at = wo.due_at
        rule = deadlines.DeadlineRule("days", ext.working_days)
        wo.due_at = deadlines.due_at(
            wo.due_at, rule, common.workday_predicate(session), common.working_hours(session)
        )
        ext.new_due_at = wo.due_at
        wo.allotted_minutes += ext.working_days * common.working_hours(session).minutes_per_day
        wo.reminded_at = None
        wo.escalation_level = 0
        wo.deadline_flag = "ok"
    label = "同意延期" if approve else "不予延期"
    journal.record(
        session, wo, "extension_decided", wo.state, wo.state, actor, f"{label} {note}".strip()
    )
    common.notify(
        session,
        wo,
        "extension",
        f"工单 {wo.number} 延期申请：{label}",
        authority_id=wo.authority_id,
    )
    session.flush()
    return ext


def pending_extensions(session: Session, actor: Account) -> list[TicketExtension]:
    _require_supervisor(actor)
    stmt = (
        select(TicketExtension)
        .join(WorkOrder, WorkOrder.id == TicketExtension.ticket_id)
        .where(
            TicketExtension.status == "pending",
            WorkOrder.jurisdiction_code == actor.jurisdiction_code,
        )
        .order_by(TicketExtension.created_at)
    )
    return list(session.scalars(stmt))


def extensions_of(session: Session, wo: WorkOrder) -> list[TicketExtension]:
    stmt = select(TicketExtension).where(TicketExtension.ticket_id == wo.id)
    return list(session.scalars(stmt.order_by(TicketExtension.created_at)))


# --- supervision orders (督办单) ------------------------------------------------------------


def issue_supervision(
    session: Session, actor: Account, wo_id: uuid.UUID, demand: str, within_hours: int
) -> SupervisionOrder:
    """A supervisor orders the lead authority to finish within `within_hours` working
    hours — never later than the deadline already running — and to answer."""
    _require_supervisor(actor)
    wo = common.get(session, actor, wo_id)
    if wo.jurisdiction_code != actor.jurisdiction_code:
        raise PermissionDenied("只有主办地的督查督办人员可以督办")
    if TicketState(wo.state) in domain.TERMINAL or wo.authority_id is None:
        raise Conflict("工单已结案，无需督办", type="illegal-transition")
    errors = []
    if not demand.strip():
        errors.append({"field": "demand", "message": "请填写督办要求"})
    if not 1 <= within_hours <= 240:
        errors.append({"field": "within_hours", "message": "办结时限应为 1 至 240 个工作小时"})
    if errors:
        raise ValidationFailed("督办单有误", errors=errors)
    due = deadlines.add_working_minutes(
        common.now(),
        within_hours * 60,
        common.workday_predicate(session),
        common.working_hours(session),
    )
    previous = wo.due_at
    if previous is not None and previous < due:
        due = previous  # a supervision order tightens, never loosens
    day, seq = common.next_sequence(session, f"DB{wo.jurisdiction_code}")
    order = SupervisionOrder(
        number=f"DB{wo.jurisdiction_code}{day}{seq:04d}",
        ticket_id=wo.id,
        authority_id=wo.authority_id,
        jurisdiction_code=wo.jurisdiction_code,
        issued_by=actor.id,
        demand=demand.strip(),
        previous_due_at=previous,
        due_at=due,
    )
    session.add(order)
    if TicketState(wo.state) in domain.CLOCK_RUNNING:
        wo.due_at = due
        wo.reminded_at = None
    journal.record(
        session,
        wo,
        "supervise",
        wo.state,
        wo.state,
        actor,
        f"督办单 {order.number}：{demand.strip()}（限 {local_dt(due)} 前）",
    )
    common.notify(
        session,
        wo,
        "supervision",
        f"督办单 {order.number}：工单 {wo.number} 须于 {local_dt(due)} 前办结并反馈",
        authority_id=wo.authority_id,
    )
    session.flush()
    return order


def answer_supervision(
    session: Session, actor: Account, order_id: uuid.UUID, answer: str
) -> SupervisionOrder:
    """The lead authority answers a supervision order."""
    order = session.get(SupervisionOrder, order_id)
    if order is None or actor.authority_id != order.authority_id:
        raise NotFound("督办单不存在或无权处理")
    if order.status != "open":
        raise Conflict("该督办单已反馈", type="supervision-answered")
    if not answer.strip():
        raise ValidationFailed("请填写督办反馈", errors=[{"field": "answer", "message": "必填"}])
    order.status = "answered"
    order.answer = answer.strip()
    order.answered_by = actor.id
    order.answered_at = common.now()
    wo = session.get(WorkOrder, order.ticket_id)
    assert wo is not None
    journal.record(session, wo, "supervision_answered", wo.state, wo.state, actor, answer.strip())
    common.notify(
        session,
        wo,
        "supervision",
        f"督办单 {order.number} 已反馈",
        jurisdiction_code=order.jurisdiction_code,
    )
    session.flush()
    return order


def close_supervision(session: Session, actor: Account, order_id: uuid.UUID) -> SupervisionOrder:
    """The supervisor accepts the answer and closes the supervision order."""
    _require_supervisor(actor)
    order = session.get(SupervisionOrder, order_id)
    if order is None or order.jurisdiction_code != actor.jurisdiction_code:
        raise NotFound("督办单不存在或无权处理")
    if order.status != "answered":
        raise Conflict("督办单尚未反馈，不能办结", type="supervision-open")
    order.status = "closed"
    order.closed_at = common.now()
    from tongban.audit import service as audit  # the close is history: in the chain

    audit.record_change(
        session,
        "supervision.closed",
        f"ticket_supervision:{order.id}",
        f"account:{actor.id}",
        before={"status": "answered"},
        after={"status": "closed"},
        ticket_id=order.ticket_id,
    )
    session.flush()
    return order


def supervision_orders(
    session: Session, actor: Account, status: str | None = None
) -> list[SupervisionOrder]:
    """Supervision orders of the supervisor's jurisdiction, or addressed to the
    officer's authority."""
    stmt = select(SupervisionOrder).order_by(SupervisionOrder.created_at.desc())
    if actor.role == Role.SUPERVISOR:
        stmt = stmt.where(SupervisionOrder.jurisdiction_code == actor.jurisdiction_code)
    elif actor.role == Role.OFFICER and actor.authority_id:
        stmt = stmt.where(SupervisionOrder.authority_id == actor.authority_id)
    else:
        raise PermissionDenied("当前账户无权查看督办单")
    if status:
        stmt = stmt.where(SupervisionOrder.status == status)
    return list(session.scalars(stmt))


def supervision_of(session: Session, wo: WorkOrder) -> list[SupervisionOrder]:
    stmt = select(SupervisionOrder).where(SupervisionOrder.ticket_id == wo.id)
    return list(session.scalars(stmt.order_by(SupervisionOrder.created_at)))


def notices_for(session: Session, actor: Account, limit: int = 50) -> list[object]:
    """The newest notices addressed to `actor`, their authority or jurisdiction."""
    stmt = select(TicketNotice).order_by(TicketNotice.created_at.desc()).limit(limit)
    if actor.role == Role.OFFICER and actor.authority_id:
        stmt = stmt.where(TicketNotice.authority_id == actor.authority_id)
    elif actor.role == Role.SUPERVISOR:
        stmt = stmt.where(TicketNotice.jurisdiction_code == actor.jurisdiction_code)
    else:
        stmt = stmt.where(TicketNotice.account_id == actor.id)
    return list(session.scalars(stmt))
