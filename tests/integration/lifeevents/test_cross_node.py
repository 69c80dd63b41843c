"""A newborn bundle across two nodes in one process, over signed HTTP (SQLite and
PostgreSQL): the fixtures of tests/integration/exchange (node A serves 上海 and 安徽, node
B 江苏 and 浙江). The mother lives in 合肥 (A), the baby is born in 上海 (A) and registered
with the father in 南京 (B): the bundle lives on A, its 出生医学证明 and 预防接种 are
handled on A, its 户口登记, 医保 and 社保卡 on B; each step starts on A when the step before
it is delivered, whichever node delivered it, and a message delivered twice changes
nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from integration.exchange.conftest import fed, fed_dbs, hosts, tools  # noqa: F401 - fixtures
from integration.lifeevents.kit import HEFEI, mother, newborn_form
from tongban.cases import service as cases
from tongban.cases.models import Case
from tongban.exchange.models import OutboxMessage
from tongban.kernel import events
from tongban.licences import service as licences
from tongban.lifeevents import service
from tongban.lifeevents.models import Bundle
from tongban.regions import service as regions

from builders import make_officer, upload


def _walk(node: Any, number: str, drain: Any) -> None:
    """The competent authority's officer on `node` takes the case to delivery."""
    with node.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None and case.handoff == "delivered", number
        officer = make_officer(s, regions.get_authority(s, case.authority_id).code)
        for action in ("accept", "start_review", "approve", "issue_result", "deliver"):
            cases.act(s, officer, case.id, action, "符合条件")
            s.commit()
    drain()


def _bundle(node: Any, bundle_id: Any) -> Bundle:
    with node.session() as s:
        bundle = s.get(Bundle, bundle_id)
        assert bundle is not None
        _ = (bundle.steps, bundle.events)
        return bundle


def _steps(node: Any, bundle_id: Any) -> dict[str, Any]:
    return {r.key: r for r in _bundle(node, bundle_id).steps}


def _cases(node: Any) -> int:
    with node.session() as s:
        return int(s.scalar(select(func.count()).select_from(Case)) or 0)


def test_a_newborn_bundle_runs_across_two_nodes(tools: Any, fed: dict[str, Any]) -> None:  # noqa: F811
    a, b = fed["node-a"], fed["node-b"]

    def drain() -> None:
        tools.drain(a, b)

    with a.session() as s:
        m = mother(s, HEFEI)
        photo = upload(s, m, "photo", tmp=a.upload_root)
        bundle = service.submit(
            s,
            m,
            service.BundleApplication(
                "newborn", newborn_form(), [photo.id], phone="13800000000", consent=True
            ),
        )
        bundle_id, mother_id = bundle.id, m.id
        s.commit()
    drain()
    steps = _steps(a, bundle_id)
    assert steps["birth_certificate"].jurisdiction_code == "310000"

    # 出生医学证明 on A: its licence is issued on A, where the mother's wallet is.
    _walk(a, steps["birth_certificate"].case_number, drain)
    steps = _steps(a, bundle_id)
    assert steps["birth_certificate"].state == "done" and steps["birth_certificate"].licence_id
    assert steps["hukou"].state == "started" and steps["hukou"].jurisdiction_code == "320000"
    assert (
        steps["vaccination"].state == "started"
        and steps["vaccination"].jurisdiction_code == "310000"
    )
    # 户口登记 reached 南京's authority on B with the 出生医学证明 verified on A (免提交).
    with b.session() as s:
        hukou = s.scalar(select(Case).where(Case.number == steps["hukou"].case_number))
        assert hukou is not None and hukou.authority_name == "南京市公安局"
        assert (
            hukou.form_data["birth_certificate_ref"]
            == steps["birth_certificate"].licence_identifier
        )
    with a.session() as s:
        uses = {u["material_code"] for u in licences.uses_for_case(s, steps["hukou"].case_id)}
        assert "birth_certificate" in uses

    # 户口登记 decided and delivered on B: its statuses come back to A, and A starts 医保.
    _walk(b, steps["hukou"].case_number, drain)
    steps = _steps(a, bundle_id)
    assert steps["hukou"].state == "done"
    # The new 户口簿 was issued on B; A does not hold it, so the later step names the case.
    assert steps["hukou"].licence_id is None
    assert steps["medical_insurance"].state == "started"
    with b.session() as s:
        medical = s.scalar(
            select(Case).where(Case.number == steps["medical_insurance"].case_number)
        )
        assert medical is not None and medical.authority_name == "南京市医疗保障局"
        assert (
            medical.form_data["household_ref"]
            == f"{steps['hukou'].case_number}（南京市公安局办件）"
        )

    _walk(b, steps["medical_insurance"].case_number, drain)
    steps = _steps(a, bundle_id)
    with b.session() as s:
        card = s.scalar(
            select(Case).where(Case.number == steps["social_security_card"].case_number)
        )
        assert card is not None and [x.material_code for x in card.attachments] == ["photo"]
    _walk(b, steps["social_security_card"].case_number, drain)
    _walk(a, steps["vaccination"].case_number, drain)

    bundle = _bundle(a, bundle_id)
    assert bundle.state == "completed" and bundle.closed_at is not None
    assert {r.state for r in bundle.steps} == {"done"}
    # Every case exists once where it is handled, and A holds the receiving copy of each.
    numbers = [r.case_number for r in bundle.steps]
    with b.session() as s:
        on_b = set(s.scalars(select(Case.number).where(Case.number.in_(numbers))))
    assert on_b == {
        steps[k].case_number for k in ("hukou", "medical_insurance", "social_security_card")
    }
    with a.session() as s:
        on_a = list(s.scalars(select(Case.number).where(Case.number.in_(numbers))))
    assert sorted(on_a) == sorted(numbers)

    # Re-delivery: every message B sent is sent again (a lost acknowledgement), every
    # case step announced again on A: no second case, no new event.
    n_a, n_b, n_events = _cases(a), _cases(b), len(bundle.events)
    with b.session() as s:
        for msg in s.scalars(select(OutboxMessage).where(OutboxMessage.status == "delivered")):
            msg.status, msg.attempts = "pending", 0
        s.commit()
    drain()
    with a.session() as s:
        for number in numbers:
            case = s.scalar(select(Case).where(Case.number == number))
            assert case is not None
            events.publish(s, events.CaseStepTaken(case.id, "deliver", case.state))
        s.commit()
    drain()
    assert (_cases(a), _cases(b)) == (n_a, n_b)
    assert len(_bundle(a, bundle_id).events) == n_events
    with a.session() as s:  # the bundle is the mother's, on her node only
        assert [x.id for x in service.list_mine(s, s.get(type(m), mother_id))] == [bundle_id]
    with b.session() as s:
        assert s.scalar(select(func.count()).select_from(Bundle)) == 0
