"""提交审批: the reviewer's proposal with their opinion moves the case into the approvers'
queue; an approver decides it or returns it (退回) with a reason; the maker of a proposal
does not decide it; the workbench shows the officer's duty and the queues of that duty
(SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases import service
from tongban.cases.domain import CaseState
from tongban.errors import Conflict, ValidationFailed
from tongban.kernel.lifecycle import IllegalTransition
from tongban.notifications.models import Message

from builders import csrf_of, make_case, make_officer, sign_in

AUTH = "320500-housing_fund"


def under_review(session: Session):  # type: ignore[no-untyped-def]
    reviewer = make_officer(session, AUTH, duty="reviewer")
    approver = make_officer(session, AUTH, duty="approver")
    case = make_case(session)
    for action in ("accept", "start_review"):
        case = service.act(session, reviewer, case.id, action, "")
    return case, reviewer, approver


def test_proposal_return_and_decision(session: Session) -> None:
    case, reviewer, approver = under_review(session)
    with pytest.raises(ValidationFailed) as e:  # the reviewer's opinion is required
        service.act(session, reviewer, case.id, "submit_for_approval", " ")
    assert e.value.errors[0]["field"] == "comment"
    service.act(session, reviewer, case.id, "submit_for_approval", "建议准予：材料齐全")
    assert case.state == CaseState.PENDING_APPROVAL
    assert service.proposal_of(case).actor_id == reviewer.id  # type: ignore[union-attr]
    with pytest.raises(IllegalTransition):  # a reviewer does not approve
        service.act(session, reviewer, case.id, "approve", "")
    with pytest.raises(ValidationFailed):  # 退回 says why
        service.act(session, approver, case.id, "return_to_review", "")
    service.act(session, approver, case.id, "return_to_review", "请核对缴存记录")
    assert case.state == CaseState.UNDER_REVIEW and service.proposal_of(case) is None
    service.act(session, reviewer, case.id, "submit_for_approval", "建议准予：已核对")
    service.act(session, approver, case.id, "approve", "同意")
    assert case.state == CaseState.APPROVED
    actions = [e.action for e in case.events]
    assert actions[-4:] == [
        "submit_for_approval",
        "return_to_review",
        "submit_for_approval",
        "approve",
    ]
    # The approvers heard of the proposal; the reviewer of the return.
    topics = lambda who: set(  # noqa: E731
        session.scalars(select(Message.topic).where(Message.account_id == who.id))
    )
    assert "case.approval" in topics(approver) and "case.returned" in topics(reviewer)


def test_an_approver_who_proposed_does_not_decide_it(session: Session) -> None:
    case, _reviewer, approver = under_review(session)
    other = make_officer(session, AUTH, duty="approver")
    service.act(session, approver, case.id, "submit_for_approval", "建议不予许可：不符合条件")
    for action in ("approve", "deny"):
        with pytest.raises(Conflict) as e:
            service.act(session, approver, case.id, action, "不符合条件")
        assert e.value.type == "own-proposal"
    service.act(session, other, case.id, "deny", "不符合条件")
    assert case.state == CaseState.DENIED


def test_the_approver_still_decides_straight_from_review(session: Session) -> None:
    """Today's rule stays for an authority whose one officer reviews and approves."""
    case, _reviewer, approver = under_review(session)
    service.act(session, approver, case.id, "approve", "")
    assert case.state == CaseState.APPROVED


def test_workbench_duty_queues_and_the_hand_off_pages(client: TestClient, session: Session) -> None:
    case, reviewer, approver = under_review(session)
    sign_in(client, reviewer)
    queue = client.get("/workbench")
    assert "我的职责" in queue.text and "受理、审查" in queue.text
    assert (
        "/workbench?state=under_review" in queue.text and "state=pending_approval" not in queue.text
    )
    page = client.get(f"/workbench/cases/{case.id}")
    assert "提交审批" in page.text and "审查意见（必填）" in page.text
    url = f"/workbench/cases/{case.id}/act"
    r = client.post(url, data={"csrf_token": csrf_of(page.text), "action": "submit_for_approval"})
    # Every missing piece at once: the proposal and the opinion.
    assert r.status_code == 422
    assert 'id="proposal-error"' in r.text and 'id="comment-error"' in r.text
    r = client.post(
        url,
        data={
            "csrf_token": csrf_of(page.text),
            "action": "submit_for_approval",
            "proposal": "approve",
            "comment": "材料齐全",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    session.refresh(case)
    assert case.state == CaseState.PENDING_APPROVAL

    sign_in(client, approver)
    queue = client.get("/workbench")
    assert "审批" in queue.text and "/workbench?state=pending_approval" in queue.text
    assert case.number in client.get("/workbench?state=pending_approval").text
    page = client.get(f"/workbench/cases/{case.id}")
    assert "建议准予：材料齐全" in page.text and "退回审查" in page.text
    r = client.post(
        url,
        data={"csrf_token": csrf_of(page.text), "action": "return_to_review", "comment": "请补核"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    session.refresh(case)
    assert case.state == CaseState.UNDER_REVIEW
