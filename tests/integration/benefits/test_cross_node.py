"""免申即享 across two nodes in one process, over signed HTTP (SQLite and PostgreSQL; the
fixtures of tests/integration/exchange: node A serves 上海 and 安徽, node B 江苏 and 浙江).
The mother lives in 南京 (B), where her bundle and her insurance data are; the baby is born
in 上海 (A), whose health commission delivers the 出生医学证明. A announces the delivery,
but the mother is not A's: A evaluates nothing and logs nothing about her. B follows the
delivery on its copy of the case and makes her 生育津贴 offer there, once, however often
the step reaches it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from stdnum.cn import ric

from integration.exchange.conftest import fed, fed_dbs, hosts, tools  # noqa: F401 - fixtures
from integration.lifeevents.kit import newborn_form
from tongban.benefits import service as benefits
from tongban.benefits.models import BenefitOffer, BenefitSubject
from tongban.cases import service as cases
from tongban.cases.models import Case
from tongban.evidence.models import DataAccess
from tongban.kernel import events
from tongban.lifeevents import service as lifeevents
from tongban.lifeevents.models import Bundle
from tongban.regions import service as regions

from builders import make_licence, make_officer, make_resident, upload

NANJING = "320100"


def _female_id() -> str:
    body = "32010219930512" + "046"
    return body + ric.calc_check_digit(body + "0")


def test_the_mother_s_node_offers_a_birth_another_delivers(tools: Any, fed: Any) -> None:  # noqa: F811
    a, b = fed["node-a"], fed["node-b"]
    ident = _female_id()

    def drain() -> None:
        tools.drain(a, b)

    with b.session() as s:
        m = make_resident(s, NANJING, display_name="刘婷", id_number=ident)
        make_licence(s, m, "resident_id_card")
        make_licence(s, m, "household_register", household_head="刘婷", relation_to_head="户主",
                     household_number="320100007", address="江苏省南京市玄武区中山路1号")  # fmt: skip
        benefits.record_facts(
            s,
            ident,
            "刘婷",
            {"insured_status": "正常参保", "months_paid": 26},
            "社会保险缴费记录（南京市社会保险管理中心）",
        )
        photo = upload(s, m, "photo", tmp=b.upload_root)
        form = newborn_form(
            mother_name="刘婷",
            mother_id_number=ident,
            mother_hukou_city=NANJING,
            hukou_follows="随母亲落户",
            hukou_address="江苏省南京市玄武区中山路1号",
            birth_date=benefits.today().isoformat(),
        )
        bundle = lifeevents.submit(
            s,
            m,
            lifeevents.BundleApplication("newborn", form, [photo.id], "13800000000", True),
        )
        bundle_id = bundle.id
        s.commit()
    drain()

    with b.session() as s:
        bundle = s.get(Bundle, bundle_id)
        assert bundle is not None
        birth = next(r for r in bundle.steps if r.key == "birth_certificate")
        number = birth.case_number
        assert birth.jurisdiction_code == "310000"  # handled on A
        assert s.scalars(select(BenefitOffer)).all() == []

    with a.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None
        officer = make_officer(s, regions.get_authority(s, case.authority_id).code)
        for action in ("accept", "start_review", "approve", "issue_result", "deliver"):
            cases.act(s, officer, case.id, action, "符合条件")
            s.commit()
    drain()
    drain()

    with a.session() as s:  # the delivering node: not the mother's
        assert s.scalars(select(BenefitOffer)).all() == []
        assert s.scalars(select(BenefitSubject)).all() == []
        assert (
            s.scalars(select(DataAccess).where(DataAccess.kind == "benefit_eligibility")).all()
            == []
        )
    with b.session() as s:
        [offer] = s.scalars(select(BenefitOffer)).all()
        assert offer.subject_identifier == ident and offer.rule_id == "maternity_allowance"
        assert offer.state == "offered"
        sources = {d["key"]: d["source"] for d in offer.trace["data"]}
        assert sources["latest_birth_date"] == "出生医学证明（上海市卫生健康委员会签发）"
        assert sources["months_paid"] == "社会保险缴费记录（南京市社会保险管理中心）"
        logged = s.scalars(
            select(DataAccess).where(
                DataAccess.subject_identifier == ident, DataAccess.kind == "benefit_eligibility"
            )
        ).all()
        assert len([x for x in logged if "生育津贴" in x.matter_name]) == 1
        # The delivery step reaching B again changes nothing.
        copy = s.scalar(select(Case).where(Case.number == number))
        assert copy is not None
        events.publish(s, events.CaseStepTaken(copy.id, "deliver", copy.state))
        s.flush()
        assert len(s.scalars(select(BenefitOffer)).all()) == 1
        s.rollback()
