"""The case (办件) state machine and its rules. Pure Python: no database, no web."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tongban.errors import Conflict, DomainError, FieldError, ValidationFailed
from tongban.kernel.lifecycle import Guard, IllegalTransition, StateMachine, reason_required

__all__ = ["IllegalTransition"]  # re-exported: what next_state raises


class CaseState(StrEnum):
    SUBMITTED = "submitted"  # 已提交，待受理
    CORRECTION = "correction_requested"  # 待补正
    ACCEPTED = "accepted"  # 已受理
    REFUSED = "refused"  # 不予受理
    UNDER_REVIEW = "under_review"  # 审查中
    APPROVED = "approved"  # 准予许可/办结
    DENIED = "denied"  # 不予许可
    RESULT_ISSUED = "result_issued"  # 已出证/出具结果
    DELIVERED = "delivered"  # 已送达
    RATED = "rated"  # 已评价


class Action(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    REQUEST_CORRECTION = "request_correction"
    RESUBMIT = "resubmit"
    START_REVIEW = "start_review"
    APPROVE = "approve"
    DENY = "deny"
    ISSUE_RESULT = "issue_result"
    DELIVER = "deliver"
    RATE = "rate"


class Actor(StrEnum):
    """Who acts, as far as the state machine cares."""

    APPLICANT = "applicant"
    REVIEWER = "reviewer"  # officer of the competent authority, duty 受理/审核
    APPROVER = "approver"  # officer of the competent authority, duty 审批
    SYSTEM = "system"  # the platform itself (多地联办 completion)


class Mode(StrEnum):
    ONLINE = "online"  # 全程网办
    PROXY = "proxy"  # 异地代收代办
    JOINT = "joint"  # 多地联办


class DeliveryMethod(StrEnum):
    ELECTRONIC = "electronic"
    POST = "post"
    WINDOW = "window"


STATE_LABELS = {
    CaseState.SUBMITTED: "已提交，待受理",
    CaseState.CORRECTION: "待补正",
    CaseState.ACCEPTED: "已受理",
    CaseState.REFUSED: "不予受理",
    CaseState.UNDER_REVIEW: "审查中",
    CaseState.APPROVED: "准予办理",
    CaseState.DENIED: "不予办理",
    CaseState.RESULT_ISSUED: "已出具结果",
    CaseState.DELIVERED: "已送达",
    CaseState.RATED: "已评价",
}

ACTION_LABELS = {
    Action.ACCEPT: "受理",
    Action.REFUSE: "不予受理",
    Action.REQUEST_CORRECTION: "要求补正",
    Action.RESUBMIT: "补正后重新提交",
    Action.START_REVIEW: "开始审查",
    Action.APPROVE: "准予办理",
    Action.DENY: "不予办理",
    Action.ISSUE_RESULT: "出具结果",
    Action.DELIVER: "送达",
    Action.RATE: "评价",
}

MODE_LABELS = {Mode.ONLINE: "全程网办", Mode.PROXY: "异地代收代办", Mode.JOINT: "多地联办"}
DELIVERY_LABELS = {
    DeliveryMethod.ELECTRONIC: "电子送达",
    DeliveryMethod.POST: "邮寄送达",
    DeliveryMethod.WINDOW: "窗口领取",
}

_OFFICERS = frozenset({Actor.REVIEWER, Actor.APPROVER})

#: (state, action) -> (next state, who may take it)
TRANSITIONS: dict[tuple[CaseState, Action], tuple[CaseState, frozenset[Actor]]] = {
    (CaseState.SUBMITTED, Action.ACCEPT): (CaseState.ACCEPTED, _OFFICERS),
    (CaseState.SUBMITTED, Action.REFUSE): (CaseState.REFUSED, _OFFICERS),
    (CaseState.SUBMITTED, Action.REQUEST_CORRECTION): (CaseState.CORRECTION, _OFFICERS),
    (CaseState.CORRECTION, Action.RESUBMIT): (CaseState.SUBMITTED, frozenset({Actor.APPLICANT})),
    (CaseState.ACCEPTED, Action.START_REVIEW): (CaseState.UNDER_REVIEW, _OFFICERS),
    (CaseState.UNDER_REVIEW, Action.APPROVE): (
        CaseState.APPROVED,
        frozenset({Actor.APPROVER, Actor.SYSTEM}),
    ),
    (CaseState.UNDER_REVIEW, Action.DENY): (
        CaseState.DENIED,
        frozenset({Actor.APPROVER, Actor.SYSTEM}),
    ),
    (CaseState.APPROVED, Action.ISSUE_RESULT): (CaseState.RESULT_ISSUED, _OFFICERS),
    (CaseState.DENIED, Action.ISSUE_RESULT): (CaseState.RESULT_ISSUED, _OFFICERS),
    (CaseState.RESULT_ISSUED, Action.DELIVER): (CaseState.DELIVERED, _OFFICERS),
    (CaseState.DELIVERED, Action.RATE): (CaseState.RATED, frozenset({Actor.APPLICANT})),
}

#: Actions whose comment is mandatory: a refusal, a correction request or a denial must say why.
REASON_REQUIRED = frozenset({Action.REFUSE, Action.REQUEST_CORRECTION, Action.DENY})

#: States in which the statutory clock runs and the deadline is watched.
CLOCK_RUNNING = frozenset(
    {CaseState.ACCEPTED, CaseState.UNDER_REVIEW, CaseState.APPROVED, CaseState.DENIED}
)
TERMINAL = frozenset({CaseState.REFUSED, CaseState.RATED})
#: States after which the case is decided (for sub-task completion of 多地联办).
DECIDED = frozenset(
    {
        CaseState.APPROVED,
        CaseState.DENIED,
        CaseState.RESULT_ISSUED,
        CaseState.DELIVERED,
        CaseState.RATED,
        CaseState.REFUSED,
    }
)


@dataclass(frozen=True)
class StepFacts:
    """What the rules of a step look at besides state and actor; the service builds it
    from the request and the case. The defaults know nothing, so a guarded step taken
    without facts is refused (a missing fact never lets a step through)."""

    #: The reason or note given with the step.
    comment: str = ""
    #: Whether the case has reached the competent authority (its handoff is delivered).
    forwarded: bool = False
    #: 多地联办: the states of the parent's sub-tasks (empty for any other case).
    subtask_states: tuple[CaseState, ...] = ()
    #: 好差评: the score given with a rating.
    score: int | None = None


def _forwarded(facts: StepFacts) -> DomainError | None:
    if facts.forwarded:
        return None
    return Conflict("办件尚未推送到本部门", type="not-yet-forwarded")


def _joint_decided(facts: StepFacts) -> DomainError | None:
    """多地联办: the whole case is approved only once every sub-task is decided and none
    was refused or denied."""
    if not facts.subtask_states:
        return None
    outcome = joint_outcome(list(facts.subtask_states))
    if not outcome.complete:
        return Conflict("多地联办的子任务尚未全部办结", type="joint-incomplete")
    if not outcome.approved:
        return Conflict("有联办部门不予办理，不能准予办理", type="joint-denied")
    return None


def _bad_rating_says_why(facts: StepFacts) -> DomainError | None:
    if facts.score is None or not rating_opens_rectification(facts.score):
        return None
    if facts.comment.strip():
        return None
    return ValidationFailed(
        "差评请说明原因，以便整改", errors=[FieldError("comment", "请填写不满意的原因")]
    )


#: Actions the competent authority (or the platform) takes: only on a forwarded case.
_AUTHORITY_STEPS = frozenset(a for (_s, a), (_t, who) in TRANSITIONS.items() if who & _OFFICERS)

#: Per action, the rules on the step's facts, in the order they are checked.
GUARDS: dict[Action, list[Guard]] = {
    a: [
        *([_forwarded] if a in _AUTHORITY_STEPS else []),
        *([reason_required(ACTION_LABELS[a])] if a in REASON_REQUIRED else []),
        *([_joint_decided] if a is Action.APPROVE else []),
        *([_bad_rating_says_why] if a is Action.RATE else []),
    ]
    for a in Action
}

#: The case lifecycle on the kernel's state machine (the table above is its declaration).
MACHINE: StateMachine[CaseState, Action] = StateMachine(
    CaseState,
    Action,
    TRANSITIONS,
    guards=GUARDS,
    state_labels=STATE_LABELS,
    action_labels=ACTION_LABELS,
    noun="办件",
)


#: No facts known: every guarded step is refused.
NO_FACTS = StepFacts()


def next_state(
    state: CaseState, action: Action, actor: Actor, facts: StepFacts = NO_FACTS
) -> CaseState:
    """Where a case goes when `actor` takes `action` with `facts`; raises
    IllegalTransition (a 409), or a guard's own failure: a missing reason is a 422 naming
    `comment`; an unforwarded case or an undecided 多地联办 is a 409 of its own type."""
    return MACHINE.next_state(state, action, actor, facts)


def allowed_actions(state: CaseState, actor: Actor) -> list[Action]:
    """The actions `actor` may take on a case in `state`, in a stable order."""
    return MACHINE.allowed_actions(state, actor)


@dataclass(frozen=True)
class JointOutcome:
    """Where a 多地联办 parent goes once its sub-tasks are decided."""

    complete: bool
    approved: bool


def joint_outcome(subtask_states: list[CaseState]) -> JointOutcome:
    """A joint application completes when every sub-task is decided; it is approved only
    when every sub-task was approved (a refusal or denial anywhere denies the whole)."""
    if not subtask_states or any(s not in DECIDED for s in subtask_states):
        return JointOutcome(complete=False, approved=False)
    approved = all(s not in (CaseState.DENIED, CaseState.REFUSED) for s in subtask_states)
    return JointOutcome(complete=True, approved=approved)


def rating_opens_rectification(score: int) -> bool:
    """好差评: 1 (非常不满意) and 2 (不满意) are 差评 and open a rectification item."""
    return score <= 2


def validate_score(score: int) -> int:
    if not 1 <= score <= 5:
        raise ValueError("评价等级须为 1 至 5")
    return score


def case_number(city_code: str, day: str, seq: int) -> str:
    """Unique across the federation: the receiving city's GB/T 2260 code (each city is
    served by exactly one node), the day (YYYYMMDD) and the city's sequence that day."""
    return f"{city_code}{day}{seq:06d}"
