import pytest

from tongban.cases.domain import (
    TRANSITIONS,
    Action,
    Actor,
    CaseState,
    IllegalTransition,
    StepFacts,
    allowed_actions,
    case_number,
    joint_outcome,
    next_state,
    rating_opens_rectification,
    validate_score,
)
from tongban.errors import Conflict, ValidationFailed

#: Facts every guard allows: a forwarded case, a reason given, no sub-tasks, a good score.
OK = StepFacts(comment="已审查", forwarded=True, score=5)

HAPPY_PATH = [
    (Action.ACCEPT, Actor.REVIEWER, CaseState.ACCEPTED),
    (Action.START_REVIEW, Actor.REVIEWER, CaseState.UNDER_REVIEW),
    (Action.APPROVE, Actor.APPROVER, CaseState.APPROVED),
    (Action.ISSUE_RESULT, Actor.REVIEWER, CaseState.RESULT_ISSUED),
    (Action.DELIVER, Actor.REVIEWER, CaseState.DELIVERED),
    (Action.RATE, Actor.APPLICANT, CaseState.RATED),
]


def test_happy_path_reaches_rated():
    state = CaseState.SUBMITTED
    for action, actor, expected in HAPPY_PATH:
        state = next_state(state, action, actor, OK)
        assert state is expected


def test_correction_loop_returns_to_submitted():
    s = next_state(CaseState.SUBMITTED, Action.REQUEST_CORRECTION, Actor.REVIEWER, OK)
    assert s is CaseState.CORRECTION
    assert next_state(s, Action.RESUBMIT, Actor.APPLICANT, OK) is CaseState.SUBMITTED


def test_denied_case_still_gets_a_decision_and_delivery():
    s = next_state(CaseState.UNDER_REVIEW, Action.DENY, Actor.APPROVER, OK)
    assert s is CaseState.DENIED
    assert next_state(s, Action.ISSUE_RESULT, Actor.REVIEWER, OK) is CaseState.RESULT_ISSUED


@pytest.mark.parametrize("state", list(CaseState))
@pytest.mark.parametrize("action", list(Action))
def test_every_pair_outside_the_table_is_refused(state, action):
    if (state, action) in TRANSITIONS:
        return
    with pytest.raises(IllegalTransition) as e:
        next_state(state, action, Actor.APPROVER)
    assert "不能执行" in e.value.detail


def test_reviewer_cannot_approve_and_applicant_cannot_accept():
    with pytest.raises(IllegalTransition, match="有权限"):
        next_state(CaseState.UNDER_REVIEW, Action.APPROVE, Actor.REVIEWER)
    with pytest.raises(IllegalTransition):
        next_state(CaseState.SUBMITTED, Action.ACCEPT, Actor.APPLICANT)
    with pytest.raises(IllegalTransition):
        next_state(CaseState.CORRECTION, Action.RESUBMIT, Actor.REVIEWER)


def test_refused_and_rated_are_terminal():
    for terminal in (CaseState.REFUSED, CaseState.RATED, CaseState.WITHDRAWN):
        for actor in Actor:
            assert allowed_actions(terminal, actor) == []


def test_allowed_actions_by_actor():
    assert allowed_actions(CaseState.SUBMITTED, Actor.REVIEWER) == [
        Action.ACCEPT,
        Action.REFUSE,
        Action.REQUEST_CORRECTION,
    ]
    # 审查中补正: either officer may ask for a correction during review (the clock pauses).
    # 提交审批: the reviewer's decision is a proposal to the approvers.
    assert allowed_actions(CaseState.UNDER_REVIEW, Actor.REVIEWER) == [
        Action.REQUEST_CORRECTION,
        Action.SUBMIT_FOR_APPROVAL,
    ]
    assert allowed_actions(CaseState.UNDER_REVIEW, Actor.APPROVER) == [
        Action.REQUEST_CORRECTION,
        Action.APPROVE,
        Action.DENY,
        Action.SUBMIT_FOR_APPROVAL,
    ]
    assert allowed_actions(CaseState.PENDING_APPROVAL, Actor.REVIEWER) == []
    assert allowed_actions(CaseState.PENDING_APPROVAL, Actor.APPROVER) == [
        Action.APPROVE,
        Action.DENY,
        Action.RETURN_TO_REVIEW,
    ]
    assert allowed_actions(CaseState.DELIVERED, Actor.APPLICANT) == [Action.RATE]


def test_joint_outcome():
    assert not joint_outcome([]).complete
    assert not joint_outcome([CaseState.APPROVED, CaseState.UNDER_REVIEW]).complete
    done = joint_outcome([CaseState.APPROVED, CaseState.DELIVERED])
    assert done.complete and done.approved
    denied = joint_outcome([CaseState.APPROVED, CaseState.DENIED])
    assert denied.complete and not denied.approved
    assert not joint_outcome([CaseState.REFUSED, CaseState.APPROVED]).approved


@pytest.mark.parametrize("action", [Action.REFUSE, Action.REQUEST_CORRECTION, Action.DENY])
def test_a_refusal_correction_or_denial_without_a_reason_is_a_422_naming_comment(action):
    state = CaseState.UNDER_REVIEW if action is Action.DENY else CaseState.SUBMITTED
    for blank in ("", "  "):
        with pytest.raises(ValidationFailed) as e:
            next_state(state, action, Actor.APPROVER, StepFacts(comment=blank, forwarded=True))
        assert e.value.status == 422
        assert e.value.errors == [{"field": "comment", "message": "请填写理由"}]
        assert "须说明理由" in e.value.detail
    assert next_state(state, action, Actor.APPROVER, OK) is TRANSITIONS[(state, action)][0]
    # a step that needs no reason goes without one
    assert (
        next_state(CaseState.SUBMITTED, Action.ACCEPT, Actor.REVIEWER, StepFacts(forwarded=True))
        is CaseState.ACCEPTED
    )


def test_the_authority_acts_only_on_a_forwarded_case():
    unforwarded = StepFacts(comment="理由", forwarded=False)
    for action in (Action.ACCEPT, Action.REFUSE):
        with pytest.raises(Conflict) as e:
            next_state(CaseState.SUBMITTED, action, Actor.REVIEWER, unforwarded)
        assert (e.value.status, e.value.type) == (409, "not-yet-forwarded")
    # the applicant's steps are not the authority's: they do not wait for the handoff
    assert (
        next_state(CaseState.CORRECTION, Action.RESUBMIT, Actor.APPLICANT, unforwarded)
        is CaseState.SUBMITTED
    )
    # a step the state does not allow is refused as such, before any fact is looked at
    with pytest.raises(IllegalTransition) as illegal:
        next_state(CaseState.SUBMITTED, Action.DELIVER, Actor.REVIEWER, unforwarded)
    assert illegal.value.why == "state"


def test_a_joint_case_is_approved_only_when_every_subtask_is_decided_and_none_denied():
    def approve(*subtasks):
        facts = StepFacts(forwarded=True, subtask_states=subtasks)
        return next_state(CaseState.UNDER_REVIEW, Action.APPROVE, Actor.APPROVER, facts)

    with pytest.raises(Conflict) as e:
        approve(CaseState.APPROVED, CaseState.UNDER_REVIEW)
    assert (e.value.status, e.value.type) == (409, "joint-incomplete")
    with pytest.raises(Conflict) as e:
        approve(CaseState.DELIVERED, CaseState.DENIED)
    assert (e.value.status, e.value.type) == (409, "joint-denied")
    assert approve(CaseState.APPROVED, CaseState.DELIVERED) is CaseState.APPROVED
    assert approve() is CaseState.APPROVED  # not a joint case
    # denying needs no decided sub-tasks, only a reason
    facts = StepFacts(comment="材料不实", forwarded=True, subtask_states=(CaseState.SUBMITTED,))
    assert next_state(CaseState.UNDER_REVIEW, Action.DENY, Actor.APPROVER, facts) is (
        CaseState.DENIED
    )


def test_a_bad_rating_must_say_why_a_good_one_need_not():
    for score in (1, 2):
        with pytest.raises(ValidationFailed) as e:
            next_state(CaseState.DELIVERED, Action.RATE, Actor.APPLICANT, StepFacts(score=score))
        assert e.value.errors == [{"field": "comment", "message": "请填写不满意的原因"}]
        facts = StepFacts(comment="等待太久", score=score)
        assert next_state(CaseState.DELIVERED, Action.RATE, Actor.APPLICANT, facts) is (
            CaseState.RATED
        )
    good = StepFacts(score=3)
    assert next_state(CaseState.DELIVERED, Action.RATE, Actor.APPLICANT, good) is CaseState.RATED


def test_without_facts_a_guarded_step_is_refused():
    with pytest.raises(Conflict):
        next_state(CaseState.SUBMITTED, Action.ACCEPT, Actor.REVIEWER)


def test_rating_rules():
    assert rating_opens_rectification(1) and rating_opens_rectification(2)
    assert not rating_opens_rectification(3)
    for bad in (0, 6, -1):
        with pytest.raises(ValueError):
            validate_score(bad)
    assert validate_score(5) == 5


def test_case_number_is_city_day_sequence():
    assert case_number("320500", "20261123", 42) == "32050020261123000042"


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(
    st.lists(st.tuples(st.sampled_from(list(Action)), st.sampled_from(list(Actor))), max_size=30)
)
def test_random_walks_only_follow_the_table(steps):
    """Whatever is attempted, a case only ever moves along TRANSITIONS, by an allowed actor."""
    state = CaseState.SUBMITTED
    for action, actor in steps:
        rule = TRANSITIONS.get((state, action))
        if rule is not None and actor in rule[1]:
            assert action in allowed_actions(state, actor)
            state = next_state(state, action, actor, OK)
            assert state is rule[0]
        else:
            assert action not in allowed_actions(state, actor)
            with pytest.raises(IllegalTransition):
                next_state(state, action, actor, OK)


def test_every_state_is_reachable_from_submitted():
    seen, frontier = {CaseState.SUBMITTED}, [CaseState.SUBMITTED]
    while frontier:
        s = frontier.pop()
        for (src, _action), (dst, _who) in TRANSITIONS.items():
            if src == s and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert seen == set(CaseState)
