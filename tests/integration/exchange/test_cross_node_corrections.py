"""Corrections (补正) and result documents across nodes: the correction notice travels
with its step from the authority's node (B) to the applicant's (A), the per-item
resubmission back; the paused clock follows; the decision PDF arrives with the result
and verifies on either node; the reminder and withdrawal are the authority node's."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tongban.cases import service as cases
from tongban.cases.attachments import blob_path
from tongban.cases.domain import CorrectionItem
from tongban.cases.models import Case

from builders import make_officer, upload

OFFICER_AUTH = "320500-housing_fund"
ITEMS = [
    CorrectionItem("id_card", "身份证", "照片页模糊"),
    CorrectionItem("extra1", "租房合同", "请提供现住址证明", listed=False),
]


def loaded(node: Any, number: str) -> Case:
    with node.session() as s:
        case = s.query(Case).filter_by(number=number).one()
        _ = (case.events, case.attachments, case.corrections, case.documents)
        return case


def test_a_review_correction_and_the_decision_cross_nodes(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, resident = tools.submit(a)
    tools.drain(a, b)
    with b.session() as s:
        reviewer = make_officer(s, OFFICER_AUTH, duty="reviewer")
        approver = make_officer(s, OFFICER_AUTH)
        for action in ("accept", "start_review"):
            cases.act(s, s.get(type(reviewer), reviewer.id), case.id, action)
            s.commit()
        cases.request_correction(
            s, s.get(type(reviewer), reviewer.id), case.id, "材料不全", ITEMS, 5
        )
        s.commit()
    tools.drain(a, b)

    mine = loaded(a, case.number)
    assert mine.state == "review_correction" and mine.clock_paused_since is not None
    (notice,) = mine.corrections
    assert (notice.stage, notice.reason, notice.status) == ("review", "材料不全", "open")
    assert [i["code"] for i in notice.items] == ["id_card", "extra1"]
    assert notice.deadline == loaded(b, case.number).corrections[0].deadline

    with a.session() as s:
        who = s.get(type(resident), resident.id)
        ids = [upload(s, who, code, tmp=a.upload_root).id for code in ("id_card", "extra1")]
        cases.resubmit(s, who, case.id, attachment_ids=ids)
        s.commit()
    tools.drain(a, b)
    copy = loaded(b, case.number)
    assert copy.state == "under_review" and copy.clock_paused_since is None
    assert copy.corrections[0].status == "answered"
    assert "extra1" in {att.material_code for att in copy.attachments}
    assert copy.deadline == loaded(a, case.number).deadline

    with b.session() as s:
        for action, result in (("approve", None), ("issue_result", "准予出具缴存证明")):
            cases.act(s, s.get(type(approver), approver.id), case.id, action, "", result)
            s.commit()
    tools.drain(a, b)
    mine = loaded(a, case.number)
    (doc,) = mine.documents
    assert doc.kind == "approval" and doc.token == loaded(b, case.number).documents[0].token
    # The PDF arrived and was stored by its hash on A: the resident's node verifies it.
    assert blob_path(a.settings.upload_dir, doc.sha256).exists()
    page = hosts.apps[a.host].get(f"/verify/documents/{doc.token}")
    assert page.status_code == 200 and "核验通过" in page.text and case.number in page.text


def test_only_the_authority_node_reminds_and_withdraws(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, _resident = tools.submit(a)
    tools.drain(a, b)
    with b.session() as s:
        officer = make_officer(s, OFFICER_AUTH)
        cases.request_correction(s, officer, case.id, "材料不全", ITEMS[:1], 1)
        s.commit()
    tools.drain(a, b)
    later = date.today() + timedelta(days=60)
    with a.session() as s:  # the receiving node holds a copy but does not act on it
        assert cases.lapse_corrections(s, later) == {"reminded": 0, "withdrawn": 0}
        s.commit()
    with b.session() as s:
        assert cases.lapse_corrections(s, later)["reminded"] == 1
        s.commit()
    tools.drain(a, b)
    mine = loaded(a, case.number)
    assert mine.events[-1].action == "correction_reminder"
    assert mine.corrections[0].reminded_on is not None
    with b.session() as s:
        assert cases.lapse_corrections(s, later + timedelta(days=30))["withdrawn"] == 1
        s.commit()
    tools.drain(a, b)
    mine = loaded(a, case.number)
    assert mine.state == "withdrawn" and mine.corrections[0].status == "lapsed"
