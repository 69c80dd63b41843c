"""The closed loop against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tongban.errors import Conflict, PermissionDenied, ValidationFailed
from tongban.tickets import service
from tongban.tickets.models import TicketNotice

from builders import (
    BORDER_WUJIANG_JIASHAN,
    INSIDE_SUZHOU,
    make_city_staff,
    make_officer,
    make_photo,
    make_resident,
    make_work_order,
)

LEAD = "320500-transport"


def fix(session, officer, wo, tmp_path, action="fix", comment=""):
    photo = make_photo(session, officer, tmp_path)
    return service.act(session, officer, wo.id, action, comment, photo_ids=[photo.id])


def test_report_fix_verify_unsatisfied_reopen_fix_again_satisfied(session, tmp_path):
    resident = make_resident(session, city="320500")
    wo = make_work_order(session, resident)
    officer = make_officer(session, LEAD)
    dispatcher = make_city_staff(session, "dispatcher", "320500")
    service.act(session, officer, wo.id, "accept")
    service.act(session, officer, wo.id, "start", "已安排养护队")
    with pytest.raises(ValidationFailed) as e:
        service.act(session, officer, wo.id, "fix")
    assert e.value.type == "evidence-required"
    fix(session, officer, wo, tmp_path, comment="已修补路面")
    assert wo.state == "fixed" and wo.on_time is True and wo.resolution == "fixed"
    service.act(session, dispatcher, wo.id, "verify", "现场核查已修复")
    assert wo.state == "verified"
    with pytest.raises(ValidationFailed):
        service.act(session, resident, wo.id, "unsatisfied")
    service.act(session, resident, wo.id, "unsatisfied", "修补处又塌陷了")
    assert wo.state == "reopened" and wo.reopen_count == 1 and wo.satisfied is False
    assert wo.due_at is not None and wo.fixed_at is None
    service.act(session, officer, wo.id, "start")
    fix(session, officer, wo, tmp_path, comment="整体重铺")
    service.act(session, dispatcher, wo.id, "verify")
    service.act(session, resident, wo.id, "satisfied")
    assert wo.state == "closed" and wo.satisfied is True and wo.closed_at is not None
    actions = [e.action for e in wo.events]
    assert actions == [
        "report", "dispatch", "accept", "start", "fix", "verify", "unsatisfied",
        "start", "fix", "verify", "satisfied",
    ]  # fmt: skip
    assert len([p for p in wo.photos if p.kind == "evidence"]) == 2
    told = session.scalars(select(TicketNotice.kind).where(TicketNotice.account_id == resident.id))
    assert {"fixed", "verified", "reopened", "closed"} <= set(told)
    # Every event is also a link of the node's audit chain, in the same order.
    from tongban.audit.models import AuditEntry

    audited = session.scalars(
        select(AuditEntry.body)
        .where(AuditEntry.subject == f"ticket:{wo.id}")
        .order_by(AuditEntry.seq)
    ).all()
    assert [json.loads(b)["action"] for b in audited] == actions


def test_return_is_reviewed_and_redispatched_or_rejected(session):
    wo = make_work_order(session, category="food_safety")  # 市场监管
    officer = make_officer(session, "320500-market_regulation")
    dispatcher = make_city_staff(session, "dispatcher", "320500")
    with pytest.raises(ValidationFailed):
        service.act(session, officer, wo.id, "return")
    service.act(session, officer, wo.id, "return", "不属于本部门职责")
    assert wo.state == "returned"
    with pytest.raises(ValidationFailed):
        service.act(session, dispatcher, wo.id, "redispatch", "改派")
    service.act(
        session, dispatcher, wo.id, "redispatch", "改派卫健", authority_code="320500-health"
    )
    assert wo.state == "dispatched" and wo.authority_name == "苏州市卫生健康委员会"
    # the first authority no longer sees it; the new one does
    assert wo not in service.list_work_orders(session, officer)
    health = make_officer(session, "320500-health")
    service.act(session, health, wo.id, "return", "也不是我们")
    service.act(session, dispatcher, wo.id, "reject_return", "属于卫健职责，请办理")
    assert wo.state == "dispatched" and wo.authority_name == "苏州市卫生健康委员会"


def test_only_parties_act_and_only_in_order(session, tmp_path):
    wo = make_work_order(session)
    officer = make_officer(session, LEAD)
    stranger = make_officer(session, "320100-transport")
    resident = make_resident(session)
    with pytest.raises(Exception, match="不存在或无权查看"):
        service.act(session, stranger, wo.id, "accept")
    with pytest.raises(Exception, match="不存在或无权查看"):
        service.act(session, resident, wo.id, "satisfied")
    with pytest.raises(Conflict):
        fix(session, officer, wo, tmp_path)
    with pytest.raises(ValidationFailed):
        service.act(session, officer, wo.id, "bogus")
    # a partner city's dispatcher watches a joint order but does not verify it
    joint = make_work_order(session, where=BORDER_WUJIANG_JIASHAN)
    partner_dispatcher = make_city_staff(session, "dispatcher", "330400")
    with pytest.raises(PermissionDenied):
        service.act(session, partner_dispatcher, joint.id, "invalidate", "无效")


def test_the_co_handler_adds_findings_but_does_not_drive(session):
    wo = make_work_order(session, where=BORDER_WUJIANG_JIASHAN)
    partner = make_officer(session, "330400-transport")
    with pytest.raises(PermissionDenied):
        service.act(session, partner, wo.id, "accept")
    service.co_note(session, partner, wo.id, "嘉善一侧路段已同步排查")
    assert wo.events[-1].action == "co_note" and wo.events[-1].actor_id == partner.id
    assert service.available_actions(partner, wo) == []


def test_the_hotline_records_a_callers_feedback(session, tmp_path):
    operator = make_city_staff(session, "hotline", "320500")
    wo = service.report(
        session,
        operator,
        service.Report(
            "street_light", "complaint", "路灯不亮", lat=31.31, lon=120.63,
            reporter_name="王女士", reporter_phone="13900000000", allow_duplicate=True,
        ),
    )  # fmt: skip
    officer = make_officer(session, LEAD)
    service.act(session, officer, wo.id, "accept")
    service.act(session, officer, wo.id, "start")
    fix(session, officer, wo, tmp_path)
    service.act(session, make_city_staff(session, "dispatcher", "320500"), wo.id, "verify")
    assert [a.value for a in service.available_actions(operator, wo)] == [
        "satisfied",
        "unsatisfied",
    ]
    service.act(session, operator, wo.id, "satisfied", "电话回访满意")
    assert wo.state == "closed"
    phone_notice = session.scalar(
        select(TicketNotice).where(
            TicketNotice.phone == "13900000000", TicketNotice.kind == "closed"
        )
    )
    assert phone_notice is not None


def test_merged_reporters_share_the_outcome(session, tmp_path):
    first = make_resident(session, city="320500")
    second = make_resident(session, city="320500")
    wo = make_work_order(session, first)
    near = (INSIDE_SUZHOU[0] + 0.0003, INSIDE_SUZHOU[1])
    merged = make_work_order(session, second, where=near, allow_duplicate=False, merge_into=wo.id)
    officer = make_officer(session, LEAD)
    service.act(session, officer, wo.id, "accept")
    service.act(session, officer, wo.id, "start")
    fix(session, officer, wo, tmp_path)
    assert service.effective(merged).state == "fixed"
    texts = session.scalars(
        select(TicketNotice.text).where(TicketNotice.account_id == second.id)
    ).all()
    assert any("合并" in t for t in texts) and any("处置完毕" in t for t in texts)


def test_a_dispatcher_merges_a_dispatched_duplicate(session):
    dispatcher = make_city_staff(session, "dispatcher", "320500")
    a = make_work_order(session)
    b = make_work_order(session, where=(INSIDE_SUZHOU[0] + 0.0002, INSIDE_SUZHOU[1]))
    service.merge(session, dispatcher, b.id, a.number)
    assert b.state == "merged" and b.merged_into_id == a.id
    with pytest.raises(Conflict):
        service.merge(session, dispatcher, a.id, b.number)
