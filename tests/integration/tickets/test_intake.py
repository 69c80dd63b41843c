"""Intake and routing against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

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


def test_a_resident_report_is_routed_by_location_and_category_and_dispatched(session, tmp_path):
    resident = make_resident(session, city="320500")
    photo = make_photo(session, resident, tmp_path)
    wo = make_work_order(session, resident, photo_ids=[photo.id], address="人民路 1 号")
    assert wo.number.startswith("GD320500")
    assert wo.channel == "web"
    assert wo.state == "dispatched"
    assert wo.authority_name == "苏州市交通运输局"
    assert not wo.joint and wo.parties == []
    assert wo.due_at is not None and wo.deadline_rule == "13 个工作日"
    assert [e.action for e in wo.events] == ["report", "dispatch"]
    assert [p.kind for p in wo.photos] == ["report"]
    assert wo.reporter_id == resident.id


def test_a_report_on_the_wujiang_jiashan_border_is_joint_and_both_sides_see_it(session):
    wo = make_work_order(session, where=BORDER_WUJIANG_JIASHAN, category="water_pollution")
    assert wo.joint
    assert (wo.city_code, wo.district_code) == ("320500", "320509")
    # 生态环境 is not an authority type of the federation yet: the 12345 centre takes it.
    assert wo.authority_name == "苏州市生态环境局"
    (co,) = wo.parties
    assert co.authority_name == "嘉兴市生态环境局" and co.jurisdiction_code == "330000"
    assert "跨界联办" in wo.routing_note
    lead = make_officer(session, "320500-ecology_environment", duty="reviewer")
    partner = make_officer(session, "330400-ecology_environment", duty="reviewer")
    assert wo in service.list_work_orders(session, lead)
    assert wo in service.list_work_orders(session, partner)
    assert service.actor_kind(lead, wo).value == "authority"
    assert service.actor_kind(partner, wo) is None  # the partner watches and adds findings
    assert service.is_co_handler(partner, wo)
    # both sides' 12345 centres and supervisors see it too
    for staff in (
        make_city_staff(session, "dispatcher", "320500"),
        make_city_staff(session, "dispatcher", "330400"),
    ):
        assert wo in service.list_work_orders(session, staff)
    notices = session.scalars(select(TicketNotice).where(TicketNotice.ticket_id == wo.id)).all()
    assert {n.authority_id for n in notices} == {wo.authority_id, co.authority_id}


def test_other_authorities_and_residents_do_not_see_it(session):
    wo = make_work_order(session)
    stranger = make_officer(session, "320100-transport")
    other_resident = make_resident(session)
    assert wo not in service.list_work_orders(session, stranger)
    assert wo not in service.list_work_orders(session, other_resident)
    with pytest.raises(Exception, match="不存在或无权查看"):
        service.get(session, stranger, wo.id)


def test_hotline_records_a_call_with_an_address_only(session):
    operator = make_city_staff(session, "hotline", "330400")
    r = service.Report(
        category_code="noise_social",
        urgency="urgent",
        description="小区广场舞噪声扰民",
        address="嘉兴市南湖区某小区",
        city_code="330400",
        reporter_name="李先生",
        reporter_phone="13800000000",
    )
    wo = service.report(session, operator, r)
    assert wo.channel == "hotline" and wo.reporter_id is None
    assert wo.recorded_by == operator.id and wo.reporter_phone == "13800000000"
    assert wo.authority_name == "嘉兴市公安局"
    assert wo.deadline_rule == "当日办结"
    with pytest.raises(ValidationFailed) as e:
        service.report(
            session,
            operator,
            service.Report("noise_social", "urgent", "x", address="y", city_code="330400"),
        )
    assert e.value.errors[0]["field"] == "reporter_phone"


def test_a_grid_inspector_reports_from_patrol(session):
    inspector = make_city_staff(session, "grid_inspector", "320500")
    wo = make_work_order(session, inspector, category="illegal_building")
    assert wo.channel == "grid" and wo.reporter_id == inspector.id


def test_bad_reports_are_refused_with_fields(session):
    resident = make_resident(session)
    with pytest.raises(ValidationFailed) as e:
        service.report(session, resident, service.Report("road_damage", "urgent", "", lat=31.0))
    fields = {err["field"] for err in e.value.errors}
    assert {"description", "lat"} <= fields
    with pytest.raises(ValidationFailed) as e:
        service.report(
            session, resident, service.Report("road_damage", "complaint", "坑", lat=39.9, lon=116.4)
        )
    assert e.value.type == "outside-service-area"
    with pytest.raises(ValidationFailed):
        service.report(
            session, resident, service.Report("manhole", "enquiry", "井盖", lat=31.3, lon=120.62)
        )
    officer = make_officer(session, "320500-transport")
    with pytest.raises(PermissionDenied):
        service.report(
            session, officer, service.Report("road_damage", "complaint", "坑", lat=31.3, lon=120.62)
        )


def test_photos_must_be_images(session, tmp_path):
    resident = make_resident(session)
    with pytest.raises(ValidationFailed):
        service.store_photo(
            session,
            resident,
            filename="x.pdf",
            data=b"%PDF-1.4 x",
            upload_dir=tmp_path,
            max_bytes=1000,
        )


def test_a_nearby_report_of_the_same_category_is_offered_for_merging(session):
    first = make_work_order(session, where=INSIDE_SUZHOU)
    second_reporter = make_resident(session, city="320500")
    near = (INSIDE_SUZHOU[0] + 0.0005, INSIDE_SUZHOU[1])  # ~55 m north
    with pytest.raises(service.PossibleDuplicate) as e:
        make_work_order(session, second_reporter, where=near, allow_duplicate=False)
    assert [c.number for c in e.value.candidates] == [first.number]
    merged = make_work_order(
        session, second_reporter, where=near, allow_duplicate=False, merge_into=first.id
    )
    assert merged.state == "merged" and merged.merged_into_id == first.id
    assert first.events[-1].action == "merged_in"
    notice = session.scalar(
        select(TicketNotice).where(TicketNotice.account_id == second_reporter.id)
    )
    assert notice is not None and first.number in notice.text
    # another category, or far away, is not a duplicate
    make_work_order(session, where=near, category="street_light", allow_duplicate=False)
    make_work_order(session, where=(31.32, 120.62), allow_duplicate=False)


def test_merging_into_an_unrelated_work_order_is_refused(session):
    far = make_work_order(session, where=(31.35, 120.60))
    with pytest.raises(Conflict):
        make_work_order(session, where=INSIDE_SUZHOU, merge_into=far.id, allow_duplicate=False)


def test_route_explains_itself(session):
    routing = service.route(
        session, "road_damage", lat=BORDER_WUJIANG_JIASHAN[0], lon=BORDER_WUJIANG_JIASHAN[1]
    )
    assert routing.lead.name == "苏州市交通运输局"
    assert [a.name for a, _ in routing.co_handlers] == ["嘉兴市交通运输局"]
    assert "吴江区" in routing.note and "浙江省" in routing.note
