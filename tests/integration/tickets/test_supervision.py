"""Deadlines, escalation, extensions, supervision orders, major tasks and figures."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tongban.errors import Conflict, PermissionDenied, ValidationFailed
from tongban.tickets import service
from tongban.tickets.models import TicketNotice
from tongban.tickets.service import figures, majortasks, supervision

from builders import (
    make_city_staff,
    make_officer,
    make_photo,
    make_resident,
    make_supervisor,
    make_work_order,
)

LEAD = "320500-transport"


def notices(session, wo, kind):
    return session.scalars(
        select(TicketNotice).where(TicketNotice.ticket_id == wo.id, TicketNotice.kind == kind)
    ).all()


def test_reminder_then_escalation_to_the_head_then_the_supervisor(session):
    wo = make_work_order(session, urgency="enquiry")  # 3 working days
    due = wo.due_at
    supervision.run_deadlines(session, now=due - timedelta(hours=2))
    assert wo.deadline_flag == "approaching" and wo.reminded_at is not None
    supervision.run_deadlines(session, now=due - timedelta(hours=1))
    assert len(notices(session, wo, "reminder")) == 1  # once only
    supervision.run_deadlines(session, now=due + timedelta(minutes=5))
    assert wo.deadline_flag == "overdue" and wo.escalation_level == 1
    (head,) = notices(session, wo, "escalation")
    assert head.authority_id == wo.authority_id
    counts = supervision.run_deadlines(session, now=due + timedelta(days=4))
    assert wo.escalation_level == 2 and counts["escalated_supervisor"] == 1
    sup = [n for n in notices(session, wo, "escalation") if n.jurisdiction_code == "320000"]
    assert len(sup) == 1
    assert [e.action for e in wo.events].count("escalate") == 2


def test_extension_approved_by_the_supervisor_moves_the_deadline(session):
    wo = make_work_order(session)
    officer = make_officer(session, LEAD)
    sup = make_supervisor(session, "320000")
    with pytest.raises(Exception, match="不存在或无权查看"):
        supervision.request_extension(session, make_resident(session, city="320500"), wo.id, 3, "x")
    with pytest.raises(PermissionDenied):  # sees it, but does not own the fix
        supervision.request_extension(
            session, make_city_staff(session, "dispatcher"), wo.id, 3, "x"
        )
    with pytest.raises(ValidationFailed):
        supervision.request_extension(session, officer, wo.id, 0, "")
    ext = supervision.request_extension(session, officer, wo.id, 5, "需协调管线单位")
    with pytest.raises(Conflict):
        supervision.request_extension(session, officer, wo.id, 2, "再延")
    before = wo.due_at
    with pytest.raises(Exception, match="不存在或无权查看"):
        supervision.decide_extension(session, make_supervisor(session, "330000"), ext.id, True)
    supervision.decide_extension(session, sup, ext.id, True, "同意")
    assert ext.status == "approved" and wo.due_at > before
    assert (wo.due_at - before).days >= 5
    assert supervision.pending_extensions(session, sup) == []


def test_a_supervision_order_tightens_the_deadline_and_is_tracked_to_its_answer(session):
    wo = make_work_order(session)
    officer = make_officer(session, LEAD)
    sup = make_supervisor(session, "320000")
    before = wo.due_at
    order = supervision.issue_supervision(session, sup, wo.id, "群众反映强烈，限期办结", 8)
    assert order.number.startswith("DB320000") and order.status == "open"
    assert wo.due_at < before and order.due_at == wo.due_at
    assert order in supervision.supervision_orders(session, officer)
    with pytest.raises(Conflict):
        supervision.close_supervision(session, sup, order.id)
    supervision.run_deadlines(session, now=order.due_at + timedelta(minutes=1))
    assert order.overdue
    supervision.answer_supervision(session, officer, order.id, "已安排抢修，明日完成")
    supervision.close_supervision(session, sup, order.id)
    assert order.status == "closed"
    assert "supervise" in [e.action for e in wo.events]


def test_a_verified_work_order_without_feedback_closes_itself(session, tmp_path):
    wo = make_work_order(session)
    officer = make_officer(session, LEAD)
    service.act(session, officer, wo.id, "accept")
    service.act(session, officer, wo.id, "start")
    service.act(
        session, officer, wo.id, "fix", photo_ids=[make_photo(session, officer, tmp_path).id]
    )
    service.act(session, make_city_staff(session, "dispatcher"), wo.id, "verify")
    supervision.run_deadlines(session, now=wo.verified_at + timedelta(hours=1))
    assert wo.state == "verified"
    supervision.run_deadlines(session, now=wo.verified_at + timedelta(days=10))
    assert wo.state == "closed" and wo.satisfied is None
    assert wo.events[-1].action == "close_no_feedback"


def test_major_tasks_flag_slipped_milestones(session):
    sup = make_supervisor(session, "320000")
    today = date.today()
    task = majortasks.create_task(
        session,
        sup,
        kind="project",
        title="太浦河清淤工程",
        description="跨省河道清淤",
        unit_codes=["320500-transport", "320500-government_service"],
        milestones=[("方案批复", today - timedelta(days=3)), ("完工", today + timedelta(days=60))],
    )
    assert [u.lead for u in task.units] == [True, False]
    assert majortasks.flag_slipped(session, today) == 1
    assert task.status == "slipped" and task.milestones[0].slipped
    assert majortasks.flag_slipped(session, today) == 0  # told once
    officer = make_officer(session, "320500-transport")
    assert task in majortasks.list_tasks(session, officer)
    majortasks.report_progress(
        session, officer, task.id, 30, "方案已批复", task.milestones[0].id, milestone_done=True
    )
    assert task.status == "on_track" and majortasks.latest_percent(task) == 30
    stranger = make_officer(session, "320100-transport")
    with pytest.raises(Exception, match="不存在"):
        majortasks.report_progress(session, stranger, task.id, 50, "x")


def test_figures_count_on_time_reopen_satisfaction_and_hot_spots(session, tmp_path):
    officer = make_officer(session, LEAD)
    dispatcher = make_city_staff(session, "dispatcher", "320500")

    def close(wo, reporter, reopen=False):
        for step in ("accept", "start"):
            service.act(session, officer, wo.id, step)
        service.act(
            session, officer, wo.id, "fix", photo_ids=[make_photo(session, officer, tmp_path).id]
        )
        service.act(session, dispatcher, wo.id, "verify")
        if reopen:
            service.act(session, reporter, wo.id, "unsatisfied", "没修好")
            service.act(session, officer, wo.id, "start")
            service.act(
                session,
                officer,
                wo.id,
                "fix",
                photo_ids=[make_photo(session, officer, tmp_path).id],
            )
            service.act(session, dispatcher, wo.id, "verify")
        service.act(session, reporter, wo.id, "satisfied")

    spot = (31.2255, 120.5455)
    reporters = [make_resident(session, city="320500") for _ in range(3)]
    orders = [
        make_work_order(session, r, where=(spot[0] + i * 0.0001, spot[1]))
        for i, r in enumerate(reporters)
    ]
    close(orders[0], reporters[0])
    close(orders[1], reporters[1], reopen=True)
    f = figures.figures(session, dispatcher)
    row = next(r for r in f.by_authority if r.name == "苏州市交通运输局")
    assert row.closed >= 2 and row.reopened >= 1 and row.satisfied >= 2
    city = next(r for r in f.by_city if r.key == "320500")
    assert city.on_time_rate is not None and 0 < city.on_time_rate <= 1
    assert any(h.category_code == "road_damage" and h.count >= 3 for h in f.hot_spots)
    with pytest.raises(PermissionDenied):
        figures.figures(session, officer)
