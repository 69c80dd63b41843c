import pytest

from tongban.cases.domain import (
    TRANSITIONS,
    Action,
    Actor,
    CaseState,
    IllegalTransition,
    allowed_actions,
    case_number,
    joint_outcome,
    next_state,
    rating_opens_rectification,
    validate_score,
)

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
        state = next_state(state, action, actor)
        assert state is expected


def test_correction_loop_returns_to_submitted():
    s = next_state(CaseState.SUBMITTED, Action.REQUEST_CORRECTION, Actor.REVIEWER)
    assert s is CaseState.CORRECTION
    assert next_state(s, Action.RESUBMIT, Actor.APPLICANT) is CaseState.SUBMITTED


def test_denied_case_still_gets_a_decision_and_delivery():
    s = next_state(CaseState.UNDER_REVIEW, Action.DENY, Actor.APPROVER)
    assert s is CaseState.DENIED
    assert next_state(s, Action.ISSUE_RESULT, Actor.REVIEWER) is CaseState.RESULT_ISSUED


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
    for terminal in (CaseState.REFUSED, CaseState.RATED):
        for actor in Actor:
            assert allowed_actions(terminal, actor) == []


def test_allowed_actions_by_actor():
    assert allowed_actions(CaseState.SUBMITTED, Actor.REVIEWER) == [
        Action.ACCEPT,
        Action.REFUSE,
        Action.REQUEST_CORRECTION,
    ]
    assert allowed_actions(CaseState.UNDER_REVIEW, Actor.REVIEWER) == []
    assert allowed_actions(CaseState.UNDER_REVIEW, Actor.APPROVER) == [Action.APPROVE, Action.DENY]
    assert allowed_actions(CaseState.DELIVERED, Actor.APPLICANT) == [Action.RATE]


def test_joint_outcome():
    assert not joint_outcome([]).complete
    assert not joint_outcome([CaseState.APPROVED, CaseState.UNDER_REVIEW]).complete
    done = joint_outcome([CaseState.APPROVED, CaseState.DELIVERED])
    assert done.complete and done.approved
    denied = joint_outcome([CaseState.APPROVED, CaseState.DENIED])
    assert denied.complete and not denied.approved
    assert not joint_outcome([CaseState.REFUSED, CaseState.APPROVED]).approved


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
            state = next_state(state, action, actor)
            assert state is rule[0]
        else:
            assert action not in allowed_actions(state, actor)
            with pytest.raises(IllegalTransition):
                next_state(state, action, actor)


def test_every_state_is_reachable_from_submitted():
    seen, frontier = {CaseState.SUBMITTED}, [CaseState.SUBMITTED]
    while frontier:
        s = frontier.pop()
        for (src, _action), (dst, _who) in TRANSITIONS.items():
            if src == s and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert seen == set(CaseState)
