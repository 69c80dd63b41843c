"""免申即享 on a real database (SQLite and PostgreSQL): a birth certified through the
newborn bundle makes the mother's 生育津贴 offer with its trace, once however often the
delivery is announced; every evaluation is in the person's data-use log; birthdays grant
age benefits; a re-evaluation that would stop a benefit opens a review and stops nothing;
a new rule version's preview counts match an independent count, and activation offers
to those who gain and reviews those who lose."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from stdnum.cn import ric

from integration.lifeevents.kit import HEFEI, submit_newborn, walk
from tongban.benefits import service, subscribers
from tongban.benefits.domain import TriggerKind
from tongban.benefits.models import BenefitOffer, BenefitReview
from tongban.cases import service as cases
from tongban.cases.models import Case
from tongban.errors import PermissionDenied, ValidationFailed
from tongban.evidence import service as evidence
from tongban.evidence.models import DataAccess
from tongban.kernel import events

from builders import make_licence, make_officer, make_resident

MOTHER_ID = "340102199003071283"  # female (even order code)
INSURED = {"insured_status": "正常参保", "months_paid": 36}
SI_SOURCE = "社会保险缴费记录（安徽省社会保险事业管理中心）"


def ident(birth: date, order: int = 2) -> str:
    body = "320102" + birth.strftime("%Y%m%d") + f"{order:03d}"
    return body + ric.calc_check_digit(body + "0")


def steps(bundle: Any) -> dict[str, Any]:
    return {s.key: s for s in bundle.steps}


def offers(session: Any, identifier: str) -> list[BenefitOffer]:
    return list(
        session.scalars(select(BenefitOffer).where(BenefitOffer.subject_identifier == identifier))
    )


def uses(session: Any, identifier: str, purpose: str = "proactive_benefits") -> list[DataAccess]:
    return list(
        session.scalars(
            select(DataAccess).where(
                DataAccess.subject_identifier == identifier, DataAccess.purpose == purpose
            )
        )
    )


def test_a_certified_birth_offers_the_mother_maternity_allowance_once(session):
    m = make_resident(session, HEFEI, display_name="王芳", id_number=MOTHER_ID)
    make_licence(session, m, "resident_id_card")
    make_licence(session, m, "household_register", household_head="王芳", relation_to_head="户主",
                 household_number="340100001", address="安徽省合肥市蜀山区长江西路100号")  # fmt: skip
    service.record_facts(session, MOTHER_ID, "王芳", INSURED, SI_SOURCE)
    bundle = submit_newborn(session, m, mother_id_number=MOTHER_ID)
    birth = session.get(Case, steps(bundle)["birth_certificate"].case_id)
    assert offers(session, MOTHER_ID) == []
    walk(session, birth.id)

    [offer] = offers(session, MOTHER_ID)
    assert (offer.rule_id, offer.rule_version, offer.state) == ("maternity_allowance", 1, "offered")
    assert offer.entitlement == "birth:2026-11-20"
    t = offer.trace
    assert t["eligible"] and t["trigger"] == "子女出生登记"
    data = {d["key"]: d for d in t["data"]}
    assert data["latest_birth_date"]["source"] == "出生医学证明（上海市卫生健康委员会签发）"
    assert data["months_paid"] == {
        "key": "months_paid",
        "label": "连续缴费月数",
        "value": "36个月",
        "source": SI_SOURCE,
    }
    assert [c["outcome"] for c in t["conditions"]] == ["met"] * 4
    assert [e.action for e in offer.events] == ["offer"]

    # The resident's data-use log shows the read: who, for what, which data.
    logged = [a for a in evidence.my_data_use(session, m) if a.kind == "benefit_eligibility"]
    maternity = [a for a in logged if "生育津贴" in a.matter_name]
    assert len(maternity) == 1
    assert set(maternity[0].fields) == {
        "insured_status",
        "latest_birth_date",
        "months_paid",
        "sex",
        "days_since_birth",
    }
    assert maternity[0].purpose == "proactive_benefits" and maternity[0].outcome == "answered"
    n_logged = len(uses(session, MOTHER_ID))

    # The delivery announced again (a replayed step, a second subscriber run): nothing new.
    again = events.CaseStepTaken(birth.id, "deliver", birth.state)
    events.publish(session, again)
    events.publish(session, again)
    subscribers.on_delivered(session, cases.delivered(birth))
    assert len(offers(session, MOTHER_ID)) == 1
    assert len(uses(session, MOTHER_ID)) == n_logged
    subject = service.subject(session, MOTHER_ID)
    assert subject is not None and subject.facts["children"]["value"] == 1

    # One action accepts it.
    accepted = service.accept(session, m, offer.id)
    assert accepted.state == "accepted"
    assert [(e.action, e.actor_name) for e in accepted.events][-1] == ("accept", m.display_name)
    # Somebody else cannot see or accept it.
    other = make_resident(session)
    with pytest.raises(Exception) as e:
        service.accept(session, other, offer.id)
    assert getattr(e.value, "status", None) == 404


def _person(session: Any, born: date, household: str = "320000", order: int = 2) -> str:
    identifier = ident(born, order)
    service.record_facts(
        session,
        identifier,
        "李秀英",
        {"household_jurisdiction": household},
        "户籍登记（江苏省公安厅）",
    )
    return identifier


def test_birthdays_grant_and_a_failed_reevaluation_only_opens_a_review(session):
    today = service.today()
    born = date(today.year - 80, today.month, today.day) if (today.month, today.day) != (2, 29) else date(today.year - 80, 3, 1)  # fmt: skip
    old = _person(session, born)
    young = _person(session, born + timedelta(days=3))
    assert service.birthdays(session, today) >= 1
    granted = {o.rule_id: o for o in offers(session, old)}
    assert set(granted) == {"longevity_allowance", "senior_transit"}
    assert {o.state for o in granted.values()} == {"granted"}
    assert offers(session, young) == []  # not their birthday: not evaluated
    assert service.birthdays(session, today) >= 1  # the job again: nothing new
    assert len(offers(session, old)) == 2

    # Moved out of the zone: 高龄津贴 no longer holds. Nothing is stopped; a review opens.
    service.record_facts(session, old, "李秀英", {"household_jurisdiction": "110000"}, "户口迁出")
    move = service.Trigger(TriggerKind.MOVE, "case:moved-out")
    service.evaluate_person(session, old, move)
    service.evaluate_person(session, old, move)
    offer = granted["longevity_allowance"]
    assert offer.state == "granted"
    [review] = session.scalars(select(BenefitReview).where(BenefitReview.offer_id == offer.id))
    assert review.state == "open" and not review.trace["eligible"]
    assert "户籍在上海市、江苏省、浙江省、安徽省" in review.trace["conclusion"]
    assert granted["senior_transit"].state == "granted"  # still holds: no review
    assert session.scalar(select(func.count()).select_from(BenefitReview)) == 1

    officer = make_officer(session, "320100-civil_affairs")
    # Only the owning authority's officers see and decide it (高龄津贴: 民政).
    health = make_officer(session, "320100-health")
    assert service.reviews(session, health) == []
    with pytest.raises(PermissionDenied):
        service.decide_review(session, health, review.id, "stop", "迁出")
    with pytest.raises(PermissionDenied):
        service.draft_version(session, health, "longevity_allowance", {0: "85"})
    assert [r.id for r in service.reviews(session, officer)] == [review.id]
    with pytest.raises(ValidationFailed) as e:
        service.decide_review(session, officer, review.id, "stop", "  ")
    assert e.value.errors[0].field == "reason"
    with pytest.raises(PermissionDenied):
        service.decide_review(session, make_resident(session), review.id, "stop", "迁出")
    service.decide_review(session, officer, review.id, "stop", "已迁出本区域，核实无误")
    assert review.state == "stopped" and offer.state == "stopped"
    assert [e.action for e in offer.events] == ["grant", "stop"]
    assert offer.events[-1].comment == "已迁出本区域，核实无误"
    assert [e.action for e in review.events] == ["open", "stop"]


def test_preview_counts_match_an_independent_count_then_activation_acts_on_them(session):
    today = service.today()
    officer = make_officer(session, "320100-civil_affairs")
    households = ["310000", "320000", "340000", "110000"]
    people = []
    for i in range(48):
        age = 70 + (i * 7) % 20  # 70..89
        hh = households[i % 4]
        born = date(today.year - age, 1, 1) - timedelta(days=1 + i % 200)
        people.append((_person(session, born, hh, order=100 + i), hh))
    # Everyone eligible under version 1 holds the grant now.
    for identifier, _ in people:
        service.evaluate_person(session, identifier, service.Trigger(TriggerKind.BIRTHDAY, "seed"))
    draft = service.draft_version(
        session, officer, "longevity_allowance", {0: "85", 1: "310000,320000"}
    )
    assert (draft.version, draft.state) == (2, "draft")

    def age_of(identifier: str) -> int:
        b = date(int(identifier[6:10]), int(identifier[10:12]), int(identifier[12:14]))
        return today.year - b.year - ((today.month, today.day) < (b.month, b.day))

    zone = {"310000", "320000", "330000", "340000"}
    old = {i for i, hh in people if age_of(i) >= 80 and hh in zone}
    new = {i for i, hh in people if age_of(i) >= 85 and hh in {"310000", "320000"}}
    p = service.preview(session, officer, "longevity_allowance", 2, sample=3)
    assert p.evaluated == len(people) and p.against == 1
    assert p.counts == {
        "gain": len(new - old),
        "lose": len(old - new),
        "keep": len(old & new),
        "none": len(people) - len(old | new),
    }
    assert p.counts["lose"] > 0 and p.counts["keep"] > 0
    assert len(p.samples["lose"]) == min(3, p.counts["lose"])
    assert "第2版" in p.samples["lose"][0]["trace"]["conclusion"]
    assert "*" in p.samples["lose"][0]["who"]
    previewed = session.scalar(
        select(func.count()).where(DataAccess.purpose == "benefit_rule_preview")
    )
    assert previewed == len(p.samples["lose"]) + len(p.samples["gain"])
    assert service.rule_row(session, "longevity_allowance", 1).state == "active"  # not yet

    made = service.activate(session, officer, "longevity_allowance", 2)
    assert made["reviews"] == len(old - new) and made["offers"] == len(new - old)
    assert service.rule_row(session, "longevity_allowance", 1).state == "retired"
    live = session.scalars(
        select(BenefitOffer).where(BenefitOffer.rule_id == "longevity_allowance")
    ).all()
    assert {o.state for o in live} == {"granted"}  # nothing withdrawn by itself
    open_reviews = service.reviews(session, officer)
    assert {r.offer.subject_identifier for r in open_reviews} == old - new
    with pytest.raises(ValidationFailed):
        service.activate(session, officer, "longevity_allowance", 2)  # already active


def test_an_unchanged_or_invalid_draft_is_refused(session):
    officer = make_officer(session, "320100-civil_affairs")
    with pytest.raises(ValidationFailed):
        service.draft_version(session, officer, "senior_transit", {0: "65"})
    with pytest.raises(ValidationFailed) as e:
        service.draft_version(session, officer, "senior_transit", {0: "abc"})
    assert e.value.errors[0].field == "c0"
    with pytest.raises(PermissionDenied):
        service.draft_version(session, make_resident(session), "senior_transit", {0: "70"})


def test_a_disability_certificate_offers_the_two_subsidies_for_severe_levels(session):
    severe = ident(date(1975, 5, 5), 11)
    mild = ident(date(1976, 6, 6), 13)
    subscribers.on_disability_certificate(session, severe, "赵强", "二级", "南京市残联", "C-1")
    subscribers.on_disability_certificate(session, severe, "赵强", "二级", "南京市残联", "C-1")
    subscribers.on_disability_certificate(session, mild, "钱明", 4, "南京市残联", "C-2")
    [offer] = offers(session, severe)
    assert offer.rule_id == "disability_subsidies" and offer.state == "offered"
    assert offer.trace["data"][0]["source"] == "残疾人证（南京市残联核发）"
    assert offers(session, mild) == []
    assert len(uses(session, mild)) == 1  # evaluated (and logged) even when not eligible


def test_a_disability_certificate_issued_as_an_e_licence_starts_the_evaluation(session):
    """The trigger end to end: a civil-affairs officer issues a 残疾人证 e-licence and the
    licence context's announcement (kernel LicenceIssued) makes the holder's offer, once;
    a certificate without a level the rules know offers nothing and breaks no issuing."""
    from tongban.licences import service as licences

    severe = ident(date(1990, 3, 7), 15)
    make_resident(session, "320100", display_name="孙丽", id_number=severe)
    officer = make_officer(session, "320100-civil_affairs")
    claims = {
        "name": "孙丽",
        "id_number": severe,
        "disability_category": "肢体",
        "disability_level": "一级",
        "certificate_number": severe + "41",
    }
    lic = licences.issue(
        session,
        officer,
        licences.IssueRequest(
            type_code="disability_certificate",
            holder_identifier=severe,
            holder_name="孙丽",
            claims=claims,
        ),
    )
    [offer] = offers(session, severe)
    assert offer.rule_id == "disability_subsidies" and offer.state == "offered"
    assert lic.authority_name in offer.trace["data"][0]["source"]
    assert len(uses(session, severe)) >= 1
    other = ident(date(1990, 3, 8), 17)
    make_resident(session, "320100", display_name="周强", id_number=other)
    licences.issue(
        session,
        officer,
        licences.IssueRequest(
            type_code="disability_certificate",
            holder_identifier=other,
            holder_name="周强",
            claims={**claims, "name": "周强", "id_number": other, "disability_level": "未评定"},
        ),
    )
    assert offers(session, other) == []
