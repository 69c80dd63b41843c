"""Purpose-bound evidence across two nodes: the applicant's consent is recorded on the
receiving node (安徽, node A), the competent officer on node B (苏州) asks for the
social-insurance record held by 安徽, node A checks and answers over signed HTTP, and the
resident sees the access in 我的数据使用记录 on their own node."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tongban.cases import service as cases
from tongban.errors import Conflict
from tongban.evidence import service as evidence
from tongban.evidence.models import DataAccess, EvidenceRequest

from builders import make_officer, make_register_record, make_resident, upload

GJJ = "YRD-GJJ-0001"  # 住房公积金异地转移接续
GJJ_FORM = {
    "out_center": "合肥住房公积金管理中心",
    "out_account": "12345678",
    "in_center": "苏州市住房公积金管理中心",
    "new_employer": "苏州示范有限公司",
}


def _submit(a: Any, consent: list[str]) -> tuple[Any, Any]:
    with a.session() as s:
        resident = make_resident(s, "340100")
        make_register_record(s, resident, "social_insurance", "340000")
        att = upload(s, resident, tmp=a.upload_root)
        case = cases.submit_online(
            s,
            resident,
            cases.Application(
                matter_code=GJJ,
                competent_jurisdiction="320000",
                competent_city="320500",
                form_data=dict(GJJ_FORM),
                consent=True,
                attachment_ids=[att.id],
                evidence_consent=consent,
            ),
        )
        s.commit()
        return case, resident


def _ask(b: Any, case: Any) -> Any:
    with b.session() as s:
        officer = make_officer(s, "320500-housing_fund")
        cases.act(s, officer, case.id, "accept")  # evidence only once accepted (受理)
        req, created = evidence.request_evidence(
            s, officer, case.id, "social_insurance", "housing_fund_transfer"
        )
        assert created and req.provider_jurisdiction == "340000"
        s.commit()
        return req


def test_evidence_request_crosses_nodes_and_the_resident_sees_it(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, resident = _submit(a, ["household", "social_insurance"])
    tools.drain(a, b)
    req = _ask(b, case)
    tools.drain(a, b)

    with b.session() as s:
        answered = s.get(EvidenceRequest, req.id)
        assert answered is not None and answered.status == "answered"
        assert answered.data["months_paid"] == 120
        assert "monthly_base" not in answered.data  # minimised: the base stays home
        # B holds no register of 安徽 residents: the data came over the wire.
        assert s.scalar(select(DataAccess).where(DataAccess.request_id == req.id)) is None
    with a.session() as s:
        log = s.scalar(select(DataAccess).where(DataAccess.request_id == req.id))
        assert log is not None and log.outcome == "answered" and log.source == "provider"
        assert log.requester_authority_name == "苏州市住房公积金管理中心"
        me = s.get(type(resident), resident.id)
        [seen] = evidence.my_data_use(s, me)
        assert (seen.case_number, seen.kind, seen.purpose) == (
            case.number,
            "social_insurance",
            "housing_fund_transfer",
        )
        other = make_resident(s, "340100")
        assert evidence.my_data_use(s, other) == []


def test_cross_node_request_without_consent_is_refused_by_the_provider(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, resident = _submit(a, [])
    tools.drain(a, b)
    req = _ask(b, case)
    tools.drain(a, b)
    with b.session() as s:
        refused = s.get(EvidenceRequest, req.id)
        assert refused is not None
        assert (refused.status, refused.reason_code, refused.data) == (
            "refused",
            "no-consent",
            None,
        )
    with a.session() as s:
        [seen] = evidence.my_data_use(s, s.get(type(resident), resident.id))
        assert (seen.outcome, seen.reason_code) == ("refused", "no-consent")


def test_a_consent_withdrawn_where_the_case_was_received_is_honoured_on_the_competent_node(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, resident = _submit(a, ["household", "social_insurance"])
    tools.drain(a, b)
    with b.session() as s:  # accepted on 江苏 (the case is handled there)
        officer = make_officer(s, "320500-housing_fund")
        cases.act(s, officer, case.id, "accept")
        s.commit()
        officer_id = officer.id
    with a.session() as s:  # the applicant withdraws on their own node (安徽)
        evidence.withdraw_consent(s, s.get(type(resident), resident.id), case.number, "social_insurance")  # fmt: skip
        s.commit()
    tools.drain(a, b)
    with b.session() as s:
        copy = evidence.consent_for(s, case.number)
        assert copy is not None and copy.active_scopes() == ["household"]
        assert [w["kind"] for w in copy.withdrawals or []] == ["social_insurance"]
        officer = s.get(type(resident), officer_id)
        with pytest.raises(Conflict) as e:
            evidence.request_evidence(s, officer, case.id, "social_insurance", "housing_fund_transfer")  # fmt: skip
        assert e.value.type == "consent-withdrawn"
