"""The generic state machine: transitions, who may take them, guards, refusals."""

from __future__ import annotations

from enum import StrEnum

import pytest

from tongban.errors import Conflict, ValidationFailed
from tongban.kernel.lifecycle import IllegalTransition, StateMachine


class S(StrEnum):
    OPEN = "open"
    DONE = "done"
    GONE = "gone"


class A(StrEnum):
    FINISH = "finish"
    DROP = "drop"
    REOPEN = "reopen"


class K(StrEnum):
    CLERK = "clerk"
    BOSS = "boss"


def _reason(facts: dict[str, str] | None) -> str | None:
    return None if facts and facts.get("reason") else "须说明理由"


MACHINE = StateMachine(
    S,
    A,
    transitions={
        (S.OPEN, A.FINISH): S.DONE,  # who: from `who` below
        (S.OPEN, A.DROP): (S.GONE, {K.BOSS}),
        (S.DONE, A.REOPEN): (S.OPEN, {K.CLERK, K.BOSS}),
    },
    who={A.FINISH: {K.CLERK}},
    guards={A.DROP: [_reason]},
    state_labels={S.OPEN: "办理中", S.DONE: "已办结", S.GONE: "已撤销"},
    action_labels={A.FINISH: "办结", A.DROP: "撤销", A.REOPEN: "重新办理"},
    noun="工单",
)


def test_a_legal_step_gives_the_target() -> None:
    assert MACHINE.next_state(S.OPEN, A.FINISH, K.CLERK) is S.DONE
    assert MACHINE.next_state(S.OPEN, A.DROP, K.BOSS, {"reason": "重复"}) is S.GONE


def test_a_step_the_state_does_not_allow_is_a_409_naming_state_and_action() -> None:
    with pytest.raises(IllegalTransition) as e:
        MACHINE.next_state(S.DONE, A.FINISH, K.CLERK)
    assert e.value.why == "state" and e.value.status == 409
    assert e.value.type == "illegal-transition"
    assert e.value.detail == "工单当前状态为“已办结”，不能执行“办结”"
    assert isinstance(e.value, Conflict)


def test_the_wrong_actor_is_refused_per_action_and_per_transition() -> None:
    with pytest.raises(IllegalTransition) as e:
        MACHINE.next_state(S.OPEN, A.FINISH, K.BOSS)
    assert e.value.why == "actor" and "须由有权限的人员执行" in e.value.detail
    with pytest.raises(IllegalTransition):
        MACHINE.next_state(S.OPEN, A.DROP, K.CLERK, {"reason": "x"})


def test_a_guard_refuses_with_its_own_chinese_reason() -> None:
    with pytest.raises(IllegalTransition) as e:
        MACHINE.next_state(S.OPEN, A.DROP, K.BOSS, {})
    assert (e.value.why, e.value.detail) == ("guard", "须说明理由")


def _reason_field(facts: dict[str, str]) -> ValidationFailed | None:
    if facts.get("reason"):
        return None
    return ValidationFailed("须说明理由", errors=[{"field": "reason", "message": "请填写理由"}])


def _not_locked(facts: dict[str, str]) -> Conflict | None:
    return Conflict("已锁定", type="locked") if facts.get("locked") else None


TYPED = StateMachine(
    S,
    A,
    {(S.OPEN, A.DROP): S.GONE, (S.DONE, A.REOPEN): S.OPEN},
    guards={A.DROP: [_reason_field, _not_locked]},
)


def test_a_guard_may_refuse_with_a_typed_failure_raised_as_it_is() -> None:
    with pytest.raises(ValidationFailed) as e:
        TYPED.next_state(S.OPEN, A.DROP, None, {})
    assert (e.value.status, e.value.type) == (422, "validation-error")
    assert e.value.errors == [{"field": "reason", "message": "请填写理由"}]
    with pytest.raises(Conflict) as c:
        TYPED.next_state(S.OPEN, A.DROP, None, {"reason": "重复", "locked": "1"})
    assert (c.value.status, c.value.type) == (409, "locked")
    assert not isinstance(c.value, IllegalTransition)
    assert TYPED.next_state(S.OPEN, A.DROP, None, {"reason": "重复"}) is S.GONE


def test_guards_run_in_order_and_only_after_state_and_actor() -> None:
    # both guards would refuse: the first declared wins
    with pytest.raises(ValidationFailed):
        TYPED.next_state(S.OPEN, A.DROP, None, {"locked": "1"})
    # a state that does not allow the step is refused before any guard is asked
    with pytest.raises(IllegalTransition) as e:
        TYPED.next_state(S.GONE, A.DROP, None, {})
    assert e.value.why == "state"
    with pytest.raises(IllegalTransition) as e:
        MACHINE.next_state(S.OPEN, A.DROP, K.CLERK, {})
    assert e.value.why == "actor"
    # an action without guards ignores the facts
    assert TYPED.next_state(S.DONE, A.REOPEN, None, None) is S.OPEN


def test_allowed_actions_follow_state_and_actor_in_declaration_order() -> None:
    assert MACHINE.allowed_actions(S.OPEN, K.CLERK) == [A.FINISH]
    assert MACHINE.allowed_actions(S.OPEN, K.BOSS) == [A.DROP]
    assert MACHINE.allowed_actions(S.DONE, K.BOSS) == [A.REOPEN]
    assert MACHINE.allowed_actions(S.GONE, K.BOSS) == []


def test_without_who_anyone_may_act() -> None:
    free = StateMachine(S, A, {(S.OPEN, A.FINISH): S.DONE})
    assert free.next_state(S.OPEN, A.FINISH) is S.DONE
    assert free.allowed_actions(S.OPEN, "whoever") == [A.FINISH]
    assert free.targets() == {(S.OPEN, A.FINISH): S.DONE}


def test_transitions_of_the_wrong_enums_are_refused_when_built() -> None:
    with pytest.raises(TypeError):
        StateMachine(S, A, {(A.FINISH, S.OPEN): S.DONE})  # type: ignore[dict-item]


def test_reason_required_names_the_field_and_allows_a_reason():
    from dataclasses import dataclass

    from tongban.errors import ValidationFailed
    from tongban.kernel.lifecycle import reason_required

    @dataclass(frozen=True)
    class Facts:
        comment: str = ""
        why: str = ""

    guard = reason_required("退回")
    refused = guard(Facts("  "))
    assert isinstance(refused, ValidationFailed) and "退回" in refused.detail
    assert refused.errors == [{"field": "comment", "message": "请填写理由"}]
    assert guard(Facts("现场无法处置")) is None
    assert reason_required("驳回", field="why")(Facts(comment="x")).errors[0]["field"] == "why"
    assert reason_required("驳回", field="why")(Facts(why="理由")) is None
