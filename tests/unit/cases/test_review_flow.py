"""The 提交审批 hand-off and the 差评整改 loop as pure rules (no database)."""

from __future__ import annotations

import pytest

from tongban.cases.domain import (
    RECT_MACHINE,
    RECT_REOPENS_MAX,
    RECT_TEXT_MAX,
    Action,
    Actor,
    CaseState,
    RectAction,
    RectFacts,
    RectState,
    StepFacts,
    next_state,
    rectification_answer,
    rectification_status,
)
from tongban.errors import Conflict, ValidationFailed
from tongban.kernel.lifecycle import IllegalTransition

FORWARDED = StepFacts(comment="符合条件", forwarded=True)


def test_a_proposal_needs_the_reviewer_s_opinion_and_goes_to_the_approvers() -> None:
    with pytest.raises(ValidationFailed) as e:
        next_state(
            CaseState.UNDER_REVIEW,
            Action.SUBMIT_FOR_APPROVAL,
            Actor.REVIEWER,
            StepFacts(forwarded=True),
        )
    assert e.value.errors[0]["field"] == "comment"
    target = next_state(
        CaseState.UNDER_REVIEW, Action.SUBMIT_FOR_APPROVAL, Actor.REVIEWER, FORWARDED
    )
    assert target is CaseState.PENDING_APPROVAL


def test_only_an_approver_decides_or_returns_a_proposal() -> None:
    for action in (Action.APPROVE, Action.DENY, Action.RETURN_TO_REVIEW):
        with pytest.raises(IllegalTransition) as e:
            next_state(CaseState.PENDING_APPROVAL, action, Actor.REVIEWER, FORWARDED)
        assert e.value.why == "actor"
    assert (
        next_state(CaseState.PENDING_APPROVAL, Action.APPROVE, Actor.APPROVER, FORWARDED)
        is CaseState.APPROVED
    )
    assert (
        next_state(CaseState.PENDING_APPROVAL, Action.RETURN_TO_REVIEW, Actor.APPROVER, FORWARDED)
        is CaseState.UNDER_REVIEW
    )
    with pytest.raises(ValidationFailed):  # 退回 says why
        next_state(
            CaseState.PENDING_APPROVAL,
            Action.RETURN_TO_REVIEW,
            Actor.APPROVER,
            StepFacts(forwarded=True),
        )


def test_the_maker_of_a_proposal_does_not_decide_it() -> None:
    own = StepFacts(comment="同意", forwarded=True, own_proposal=True)
    for action in (Action.APPROVE, Action.DENY):
        with pytest.raises(Conflict) as e:
            next_state(CaseState.PENDING_APPROVAL, action, Actor.APPROVER, own)
        assert e.value.type == "own-proposal"


def test_the_loop_reopens_a_bounded_number_of_times_then_escalates() -> None:
    actions = ["rate"]
    for n in range(RECT_REOPENS_MAX):
        actions += [RectAction.REPLY.value]
        status = rectification_status(1, actions)
        assert status is not None and status.state is RectState.REPLIED
        step = rectification_answer(False, status.reopens)
        assert step is RectAction.REOPEN
        actions.append(step.value)
        status = rectification_status(1, actions)
        assert status is not None and (status.state, status.reopens) == (RectState.OPEN, n + 1)
    assert rectification_answer(False, RECT_REOPENS_MAX) is RectAction.ESCALATE
    assert rectification_answer(True, RECT_REOPENS_MAX) is RectAction.ACCEPT
    with pytest.raises(Conflict):  # past the bound, 未解决 cannot reopen it again
        RECT_MACHINE.next_state(
            RectState.REPLIED, RectAction.REOPEN, Actor.APPLICANT, RectFacts("仍未解决", 2)
        )
    actions += [RectAction.REPLY.value, RectAction.ESCALATE.value]
    assert rectification_status(1, actions).state is RectState.ESCALATED  # type: ignore[union-attr]


def test_no_item_for_a_good_rating_and_who_takes_which_step() -> None:
    assert rectification_status(3, ["rate"]) is None
    assert rectification_status(None, []) is None
    with pytest.raises(IllegalTransition):  # the applicant does not reply
        RECT_MACHINE.next_state(RectState.OPEN, RectAction.REPLY, Actor.APPLICANT, RectFacts("x"))
    with pytest.raises(IllegalTransition):  # an officer does not accept for the applicant
        RECT_MACHINE.next_state(RectState.REPLIED, RectAction.ACCEPT, Actor.REVIEWER, RectFacts())
    with pytest.raises(ValidationFailed) as e:
        RECT_MACHINE.next_state(
            RectState.OPEN, RectAction.REPLY, Actor.REVIEWER, RectFacts("长" * (RECT_TEXT_MAX + 1))
        )
    assert e.value.errors[0]["field"] == "response"
