"""The work-order state machine: pure rules, no database."""

from __future__ import annotations

import pytest

from tongban.errors import ValidationFailed
from tongban.tickets import domain
from tongban.tickets.domain import Action, Actor, TicketState

S, A = TicketState, Action
#: Facts every guard allows: a reason given, one evidence photo.
OK = domain.StepFacts(comment="已核实", photos=1)


def walk(state: TicketState, *steps: tuple[Action, Actor]) -> TicketState:
    for action, actor in steps:
        state = domain.next_state(state, action, actor, OK)
    return state


def test_the_whole_loop_with_a_reopen_ends_closed():
    end = walk(
        S.REPORTED,
        (A.DISPATCH, Actor.SYSTEM),
        (A.ACCEPT, Actor.AUTHORITY),
        (A.START, Actor.AUTHORITY),
        (A.FIX, Actor.AUTHORITY),
        (A.VERIFY, Actor.DISPATCHER),
        (A.UNSATISFIED, Actor.REPORTER),
    )
    assert end is S.REOPENED
    end = walk(
        end,
        (A.START, Actor.AUTHORITY),
        (A.PARTLY_FIX, Actor.AUTHORITY),
        (A.VERIFY, Actor.DISPATCHER),
        (A.SATISFIED, Actor.REPORTER),
    )
    assert end is S.CLOSED


def test_a_return_is_reviewed_by_the_dispatcher():
    returned = walk(S.REPORTED, (A.DISPATCH, Actor.DISPATCHER), (A.RETURN, Actor.AUTHORITY))
    assert returned is S.RETURNED
    assert domain.next_state(returned, A.REDISPATCH, Actor.DISPATCHER) is S.DISPATCHED
    assert domain.next_state(returned, A.REJECT_RETURN, Actor.DISPATCHER, OK) is S.DISPATCHED
    with pytest.raises(domain.IllegalTransition):
        domain.next_state(returned, A.REDISPATCH, Actor.AUTHORITY)


def test_a_failed_verification_goes_back_to_the_authority():
    assert domain.next_state(S.FIXED, A.REJECT_FIX, Actor.DISPATCHER, OK) is S.IN_PROGRESS


@pytest.mark.parametrize(
    ("state", "action", "actor"),
    [
        (S.DISPATCHED, A.FIX, Actor.AUTHORITY),  # must accept and start first
        (S.IN_PROGRESS, A.VERIFY, Actor.DISPATCHER),  # nothing fixed yet
        (S.FIXED, A.SATISFIED, Actor.REPORTER),  # not verified yet
        (S.FIXED, A.VERIFY, Actor.AUTHORITY),  # an authority cannot verify its own fix
        (S.VERIFIED, A.SATISFIED, Actor.DISPATCHER),  # only the reporter (or hotline) answers
        (S.CLOSED, A.UNSATISFIED, Actor.REPORTER),
        (S.MERGED, A.DISPATCH, Actor.DISPATCHER),
        (S.VERIFIED, A.CLOSE_NO_FEEDBACK, Actor.DISPATCHER),
    ],
)
def test_illegal_steps_are_refused_in_chinese(state, action, actor):
    with pytest.raises(domain.IllegalTransition) as e:
        domain.next_state(state, action, actor)
    assert "不能执行" in e.value.detail or "有权限" in e.value.detail


def test_allowed_actions_per_actor():
    assert domain.allowed_actions(S.DISPATCHED, Actor.AUTHORITY) == [A.ACCEPT, A.RETURN]
    assert domain.allowed_actions(S.VERIFIED, Actor.OPERATOR) == [A.SATISFIED, A.UNSATISFIED]
    assert domain.allowed_actions(S.VERIFIED, Actor.SYSTEM) == []  # auto-close is the worker's
    assert domain.allowed_actions(S.IN_PROGRESS, Actor.REPORTER) == []


def test_reasons_and_evidence_are_demanded_where_it_matters():
    assert A.RETURN in domain.REASON_REQUIRED
    assert A.UNSATISFIED in domain.REASON_REQUIRED
    assert A.FIX not in domain.REASON_REQUIRED
    assert {A.FIX, A.PARTLY_FIX} == domain.EVIDENCE_REQUIRED


@pytest.mark.parametrize("action", sorted(domain.REASON_REQUIRED))
def test_a_step_that_needs_a_reason_is_a_422_naming_comment_without_one(action):
    state, actor = next(
        (s, who) for (s, a), (_t, whos) in domain.TRANSITIONS.items() if a is action for who in whos
    )
    with pytest.raises(ValidationFailed) as e:
        domain.next_state(state, action, actor, domain.StepFacts(comment=" ", photos=1))
    assert e.value.status == 422 and "须说明理由" in e.value.detail
    assert e.value.errors == [{"field": "comment", "message": "请填写理由"}]
    assert domain.next_state(state, action, actor, OK) is domain.TRANSITIONS[(state, action)][0]


def test_a_fix_without_evidence_is_a_422_naming_photos():
    with pytest.raises(ValidationFailed) as e:
        domain.next_state(S.IN_PROGRESS, A.FIX, Actor.AUTHORITY, domain.StepFacts())
    assert (e.value.status, e.value.type) == (422, "evidence-required")
    assert e.value.errors == [{"field": "photos", "message": "请上传至少一张处置照片"}]
    # a partial fix needs both: the reason is asked for first
    with pytest.raises(ValidationFailed) as e:
        domain.next_state(S.IN_PROGRESS, A.PARTLY_FIX, Actor.AUTHORITY, domain.StepFacts())
    assert e.value.errors[0]["field"] == "comment"
    facts = domain.StepFacts(comment="部分路段待施工")
    with pytest.raises(ValidationFailed) as e:
        domain.next_state(S.IN_PROGRESS, A.PARTLY_FIX, Actor.AUTHORITY, facts)
    assert e.value.errors[0]["field"] == "photos"
    # an illegal step is refused as such, whatever the facts
    with pytest.raises(domain.IllegalTransition):
        domain.next_state(S.DISPATCHED, A.FIX, Actor.AUTHORITY, domain.StepFacts())


def test_open311_sees_only_open_and_closed():
    assert domain.open311_status(S.REOPENED) == "open"
    assert domain.open311_status(S.VERIFIED) == "open"
    assert domain.open311_status(S.CLOSED) == "closed"
    assert domain.open311_status(S.MERGED) == "closed"


def test_every_state_and_action_has_a_chinese_label():
    assert set(domain.STATE_LABELS) == set(TicketState)
    assert set(domain.ACTION_LABELS) == set(Action)


def test_numbers_and_rates():
    assert domain.work_order_number("320500", "20260105", 7) == "GD3205002026010500007"
    assert domain.rate(1, 4) == 0.25
    assert domain.rate(0, 0) is None
