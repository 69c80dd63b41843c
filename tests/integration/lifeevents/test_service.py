"""Life-event bundles on one node (SQLite and PostgreSQL): one submission starts a case per
ready step at its competent authority; officers act through cases.service; each delivered
step starts the steps waiting for it, its e-licence standing in for their materials; a
denial blocks what waits for it; re-delivered messages and events never start a second
case."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from integration.lifeevents.kit import (
    HEFEI,
    NANJING,
    mother,
    newborn_form,
    pump,
    submit_newborn,
    walk,
)
from tongban.cases import service as cases
from tongban.cases.models import Case
from tongban.errors import PermissionDenied, ValidationFailed
from tongban.exchange.models import OutboxMessage
from tongban.exchange.service import apply_locally
from tongban.files.service import store_upload
from tongban.kernel import events
from tongban.licences import service as licences
from tongban.lifeevents import service
from tongban.lifeevents.models import Bundle, BundleEvent

from builders import TINY_PDF, make_enterprise, make_officer, make_resident, upload


def steps(bundle: Bundle) -> dict[str, Any]:
    return {s.key: s for s in bundle.steps}


def case_count(session: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(Case)))


def test_one_submission_walks_the_newborn_bundle_to_the_end(session):
    m = mother(session)
    before = case_count(session)
    bundle = submit_newborn(session, m)
    s = steps(bundle)
    assert bundle.number.startswith(f"YJS{HEFEI}") and bundle.state == "in_progress"
    # Only the first step could start: the others wait for its result.
    assert [k for k, r in s.items() if r.state == "started"] == ["birth_certificate"]
    assert {
        s[k].state for k in ("hukou", "medical_insurance", "social_security_card", "vaccination")
    } == {"waiting"}
    assert case_count(session) == before + 1
    birth = session.get(Case, s["birth_certificate"].case_id)
    assert birth.authority_name == "上海市卫生健康委员会" and birth.receiving_city == HEFEI
    assert (
        birth.form_data["name"] == "张小宝"
        and birth.form_data["birth_place"] == "上海市第一妇婴保健院"
    )
    views = {v.row.key: v for v in service.describe(session, bundle)}
    assert views["social_security_card"].waits_on == ["医保参保登记"]

    walk(session, birth.id)
    s = steps(bundle)
    assert s["birth_certificate"].state == "done" and s["birth_certificate"].licence_id
    # 户口登记 went to the father's 南京; 预防接种 to 上海 where the family lives.
    hukou = session.get(Case, s["hukou"].case_id)
    vacc = session.get(Case, s["vaccination"].case_id)
    assert hukou.authority_name == "南京市公安局" and hukou.competent_jurisdiction == "320000"
    assert vacc.authority_name == "上海市卫生健康委员会"
    # The 出生医学证明 issued at step 1 is the 免提交 material of 户口登记, verified.
    uses = {u["material_code"]: u for u in licences.uses_for_case(session, hukou.id)}
    assert uses["birth_certificate"]["licence_id"] == s["birth_certificate"].licence_id
    assert uses["birth_certificate"]["valid"]
    assert hukou.form_data["birth_certificate_ref"] == s["birth_certificate"].licence_identifier
    assert hukou.form_data["name"] == "张小宝"  # asked once, filled into every matter

    walk(session, hukou.id)
    s = steps(bundle)
    medical = session.get(Case, s["medical_insurance"].case_id)
    assert (
        medical.authority_name == "南京市医疗保障局"
        and medical.form_data["insured_city"] == "南京市"
    )
    uses = {
        u["material_code"]: u["licence_id"] for u in licences.uses_for_case(session, medical.id)
    }
    assert uses["household_register"] == s["hukou"].licence_id  # 户口登记's result, 免提交

    walk(session, medical.id)
    card = session.get(Case, steps(bundle)["social_security_card"].case_id)
    assert card.authority_name == "南京市人力资源和社会保障局"
    assert [a.material_code for a in card.attachments] == ["photo"]  # uploaded once
    walk(session, card.id)
    assert bundle.state == "in_progress"  # 预防接种 is still open
    walk(session, vacc.id)

    assert bundle.state == "completed" and bundle.closed_at is not None
    assert {r.state for r in bundle.steps} == {"done"}
    assert case_count(session) == before + 5
    actions = [e.action for e in bundle.events]
    assert actions[:3] == ["submit", "step_started", "progress"]
    assert actions.count("step_started") == 5 and actions.count("step_done") == 5
    assert actions[-1] == "complete"
    assert [e.seq for e in bundle.events] == list(range(1, len(actions) + 1))


def test_redelivered_messages_and_events_never_start_a_second_case(session):
    m = mother(session)
    bundle = submit_newborn(session, m)
    walk(session, steps(bundle)["birth_certificate"].case_id)
    walk(session, steps(bundle)["hukou"].case_id)
    n_cases, n_events = case_count(session), len(bundle.events)
    started = {k: r.case_id for k, r in steps(bundle).items()}
    # Every message delivered again (the inbox knows it), and every case event announced
    # again (a subscriber called twice): nothing moves.
    for msg in list(session.scalars(select(OutboxMessage))):
        apply_locally(session, msg)
    for case_id in [c for c in started.values() if c]:
        case = session.get(Case, case_id)
        for _ in range(2):
            events.publish(session, events.CaseStepTaken(case.id, "deliver", case.state))
            service.case_moved(session, case.id)
    pump(session)
    session.expire_all()
    bundle = session.get(Bundle, bundle.id)
    assert case_count(session) == n_cases
    assert len(bundle.events) == n_events
    assert {k: r.case_id for k, r in steps(bundle).items()} == started


def test_a_denied_step_fails_blocks_what_waits_for_it_and_the_rest_goes_on(session):
    m = mother(session)
    bundle = submit_newborn(session, m)
    walk(session, steps(bundle)["birth_certificate"].case_id)
    walk(session, steps(bundle)["hukou"].case_id, deny="父亲户籍信息与申报不符")
    s = steps(bundle)
    assert s["hukou"].state == "failed"
    assert s["hukou"].note == (
        "不予办理：父亲户籍信息与申报不符。受影响的后续环节：“医保参保登记”、“社会保障卡申领”"
    )
    assert s["medical_insurance"].state == s["social_security_card"].state == "blocked"
    assert "因“出生登记（落户）”未通过" in s["medical_insurance"].note
    assert s["medical_insurance"].case_id is None
    assert bundle.state == "blocked" and bundle.closed_at is None  # 预防接种 still runs
    views = {v.row.key: v for v in service.describe(session, bundle)}
    assert views["hukou"].blocks == ["医保参保登记", "社会保障卡申领"]
    walk(session, s["vaccination"].case_id)
    assert steps(bundle)["vaccination"].state == "done"
    assert bundle.state == "blocked" and bundle.closed_at is not None


def test_a_step_that_cannot_be_submitted_is_blocked_and_the_officer_s_step_stands(session):
    m = mother(session)
    bundle = submit_newborn(session, m)
    # Before 户口登记 can start, the mother's 户口簿 licence is revoked: the step is blocked
    # with the reason, and the delivery of step 1 is not refused because of it.
    held = licences.list_mine(session, m, type_code="household_register")
    officer = make_officer(session, "340100-public_security")
    licences.change_status(session, officer, held[0].id, "revoke", "户口簿信息变更")
    case = walk(session, steps(bundle)["birth_certificate"].case_id)
    assert case.state == "delivered"
    s = steps(bundle)
    assert s["hukou"].state == "blocked" and s["hukou"].case_id is None
    assert s["hukou"].note.startswith("未能提交：缺少材料：居民户口簿")
    assert s["vaccination"].state == "started"
    assert s["medical_insurance"].state == "blocked"


def test_the_submission_is_checked_whole_with_the_merged_form_s_field_names(session):
    m = mother(session)
    with pytest.raises(ValidationFailed) as e:
        service.submit(
            session,
            m,
            service.BundleApplication(
                "newborn",
                newborn_form(child_name=None, father_hukou_city=None, birth_date="2026-13-01"),
                [],
                consent=False,
            ),
        )
    errors = {err.field: err.message for err in e.value.errors}
    assert errors["form_data.child_name"] == "“新生儿姓名”为必填项"
    assert errors["form_data.birth_date"].startswith("“出生日期”应为有效日期")
    assert errors["form_data.father_hukou_city"] == "请选择父亲户籍地（城市）"  # 随父亲落户
    assert errors["materials.photo"] == "请上传近期免冠证件照片"
    assert "consent" in errors
    # The missing 落户地 is said once, on its field, not again by every matter using it.
    assert "form_data.form" not in errors
    assert (
        session.scalar(select(func.count()).select_from(Bundle).where(Bundle.applicant_id == m.id))
        == 0
    )


def test_a_joint_step_needs_two_jurisdictions_and_unticked_steps_are_skipped(session):
    m = mother(session)
    form = {
        "origin_city": HEFEI,
        "destination_city": "340200",  # 芜湖, also 安徽
        "move_reason": "购房落户",
        "origin_address": "安徽省合肥市蜀山区长江西路100号",
        "destination_address": "江苏省南京市鼓楼区北京西路1号",
        "persons": 1,
        "has_driving_licence": False,
        "transfer_social_insurance": False,
        "transfer_housing_fund": False,
    }
    proof = upload(session, m, "settlement_proof")
    app = service.BundleApplication("hukou_migration", form, [proof.id], consent=True)
    with pytest.raises(ValidationFailed) as e:
        service.submit(session, m, app)
    assert {err.field for err in e.value.errors} == {"form_data.origin_city"}
    form["destination_city"] = NANJING
    bundle = service.submit(
        session, m, service.BundleApplication("hukou_migration", form, [proof.id], consent=True)
    )
    s = steps(bundle)
    assert [k for k, r in s.items() if r.state == "skipped"] == [
        "driving_licence",
        "social_insurance",
        "housing_fund",
    ]
    parent = session.get(Case, s["migration"].case_id)
    assert parent.mode == "joint" and parent.authority_name == "南京市公安局"
    assert [sub.authority_name for sub in parent.subtasks] == ["安徽省公安厅"]
    # The lead decides once the 迁出 side has; then the result reaches the bundle.
    pump(session)
    sub = parent.subtasks[0]
    lead = make_officer(session, "320100-public_security")
    cases.act(session, lead, parent.id, "accept", "")
    cases.act(session, lead, parent.id, "start_review", "")
    origin = make_officer(session, "340000-public_security")
    for action in ("accept", "start_review", "approve"):
        cases.act(session, origin, sub.id, action, "同意迁出")
    assert parent.state == "approved"
    cases.act(session, lead, parent.id, "issue_result", "")
    cases.act(session, lead, parent.id, "deliver", "")
    assert bundle.state == "completed"
    assert steps(bundle)["migration"].licence_identifier  # the new 户口簿, issued in 南京


def test_business_bundle_uploads_once_and_uses_the_business_licence_downstream(session, settings):
    firm = make_enterprise(session, "320500")
    # Stored where this node keeps its files: a later case gets a copy of the same bytes.
    files = {
        code: store_upload(
            session,
            firm,
            material_code=code,
            filename=f"{code}.pdf",
            data=TINY_PDF + code.encode(),
            upload_dir=settings.upload_dir,
            max_bytes=settings.max_upload_bytes,
        )
        for code in ("application", "articles", "legal_rep_id")
    }
    form = {
        "company_name": "苏州一件事科技有限公司",
        "company_type": "有限责任公司",
        "registered_capital": 100,
        "legal_representative": "李娜",
        "address": "江苏省苏州市工业园区星湖街2号",
        "business_scope": "软件开发",
        "company_city": "320500",
        "seal_set": "公章、财务专用章、发票专用章",
        "taxpayer_type": "小规模纳税人",
        "invoice_type": "数电发票",
        "employees": 8,
    }
    app = service.BundleApplication("business", form, [f.id for f in files.values()], consent=True)
    bundle = service.submit(session, firm, app)
    walk(session, steps(bundle)["registration"].case_id)
    s = steps(bundle)
    assert s["registration"].licence_id  # the 营业执照, issued on delivery
    assert [k for k, r in s.items() if r.state == "started"] == [
        "seal",
        "social_insurance",
        "housing_fund",
    ]
    assert s["tax"].state == "waiting"  # it needs the seal too
    seal = session.get(Case, s["seal"].case_id)
    uses = {u["material_code"]: u["licence_id"] for u in licences.uses_for_case(session, seal.id)}
    assert uses == {"business_licence": s["registration"].licence_id}
    # 法定代表人身份证 was uploaded once; each case holds its own copy of the same file.
    copies = [
        a
        for c in (s["registration"].case_id, seal.id)
        for a in session.get(Case, c).attachments
        if a.material_code == "legal_rep_id"
    ]
    assert len({a.id for a in copies}) == 2 and len({a.sha256 for a in copies}) == 1
    walk(session, seal.id)
    assert steps(bundle)["tax"].state == "started"


def test_who_may_submit_and_see(session):
    m = mother(session)
    firm = make_enterprise(session, "320500")
    with pytest.raises(ValidationFailed) as e:
        service.submit(
            session, firm, service.BundleApplication("newborn", newborn_form(), [], consent=True)
        )
    assert e.value.type == "subject-mismatch"
    bundle = submit_newborn(session, m)
    other = make_resident(session, HEFEI)
    with pytest.raises(Exception) as e2:
        service.get_bundle(session, other, bundle.id)
    assert getattr(e2.value, "status", None) == 404
    officer = make_officer(session, "310000-health")
    with pytest.raises(PermissionDenied):
        service.submit(session, officer, service.BundleApplication("newborn", newborn_form(), []))
    assert service.list_mine(session, m) == [bundle]
    assert (
        session.scalar(
            select(func.count()).select_from(BundleEvent).where(BundleEvent.bundle_id == bundle.id)
        )
        >= 3
    )


def test_the_bundles_fit_this_node_s_catalogue(session):
    assert service.check_definitions(session) == []


def test_the_form_asks_each_material_once_saying_how_it_is_provided(session):
    m = mother(session)
    rows = {
        r.code: r for r in service.material_overview(session, m, service.get_definition("newborn"))
    }
    assert rows["birth_certificate"].source == "result"
    assert rows["birth_certificate"].detail == "由“出生医学证明”的结果自动关联（免提交）"
    assert rows["id_card"].source == "wallet" and rows["household_register"].source == "wallet"
    assert rows["photo"].source == "upload" and rows["photo"].required
    # Without the licence, 户口簿 is uploaded for 户口登记 only: 医保 gets 户口登记's result.
    stranger = make_resident(session, HEFEI)
    rows = {
        r.code: r
        for r in service.material_overview(session, stranger, service.get_definition("newborn"))
    }
    assert rows["household_register"].source == "upload"
    assert rows["household_register"].steps == ["出生登记（落户）"]
