"""The case (办件) state machine and its rules. Pure Python: no database, no web."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from tongban.errors import Conflict, DomainError, FieldError, ValidationFailed
from tongban.kernel.lifecycle import Guard, IllegalTransition, StateMachine, reason_required

__all__ = ["IllegalTransition"]  # re-exported: what next_state raises


class CaseState(StrEnum):
    SUBMITTED = "submitted"  # 已提交，待受理
    CORRECTION = "correction_requested"  # 待补正 (before acceptance: the clock has not started)
    REVIEW_CORRECTION = "review_correction"  # 审查中补正 (the statutory clock is paused)
    WITHDRAWN = "withdrawn"  # 视为撤回 (a correction not answered in time)
    ACCEPTED = "accepted"  # 已受理
    REFUSED = "refused"  # 不予受理
    UNDER_REVIEW = "under_review"  # 审查中
    PENDING_APPROVAL = "pending_approval"  # 待审批 (the reviewer's proposal is with an approver)
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
    SUBMIT_FOR_APPROVAL = "submit_for_approval"  # 提交审批: the reviewer's proposal
    RETURN_TO_REVIEW = "return_to_review"  # 退回: the approver sends it back to review
    APPROVE = "approve"
    DENY = "deny"
    ISSUE_RESULT = "issue_result"
    DELIVER = "deliver"
    RATE = "rate"
    WITHDRAW = "withdraw"


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
    VIRTUAL = "virtual"  # 跨省远程虚拟窗口 (tongban.virtualwindow)


class DeliveryMethod(StrEnum):
    ELECTRONIC = "electronic"
    POST = "post"
    WINDOW = "window"


STATE_LABELS = {
    CaseState.SUBMITTED: "已提交，待受理",
    CaseState.CORRECTION: "待补正",
    CaseState.REVIEW_CORRECTION: "待补正（审查中，时限暂停）",
    CaseState.WITHDRAWN: "视为撤回",
    CaseState.ACCEPTED: "已受理",
    CaseState.REFUSED: "不予受理",
    CaseState.UNDER_REVIEW: "审查中",
    CaseState.PENDING_APPROVAL: "待审批",
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
    Action.SUBMIT_FOR_APPROVAL: "提交审批",
    Action.RETURN_TO_REVIEW: "退回审查",
    Action.APPROVE: "准予办理",
    Action.DENY: "不予办理",
    Action.ISSUE_RESULT: "出具结果",
    Action.DELIVER: "送达",
    Action.RATE: "评价",
    Action.WITHDRAW: "逾期未补正，视为撤回",
}

MODE_LABELS = {
    Mode.ONLINE: "全程网办",
    Mode.PROXY: "异地代收代办",
    Mode.JOINT: "多地联办",
    Mode.VIRTUAL: "远程虚拟窗口",
}
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
    # 审查中补正: the statutory clock pauses until the applicant resubmits.
    (CaseState.UNDER_REVIEW, Action.REQUEST_CORRECTION): (
        CaseState.REVIEW_CORRECTION,
        _OFFICERS,
    ),
    (CaseState.REVIEW_CORRECTION, Action.RESUBMIT): (
        CaseState.UNDER_REVIEW,
        frozenset({Actor.APPLICANT}),
    ),
    # A correction not answered by its deadline (and a grace period after the reminder).
    (CaseState.CORRECTION, Action.WITHDRAW): (CaseState.WITHDRAWN, frozenset({Actor.SYSTEM})),
    (CaseState.REVIEW_CORRECTION, Action.WITHDRAW): (
        CaseState.WITHDRAWN,
        frozenset({Actor.SYSTEM}),
    ),
    (CaseState.UNDER_REVIEW, Action.APPROVE): (
        CaseState.APPROVED,
        frozenset({Actor.APPROVER, Actor.SYSTEM}),
    ),
    (CaseState.UNDER_REVIEW, Action.DENY): (
        CaseState.DENIED,
        frozenset({Actor.APPROVER, Actor.SYSTEM}),
    ),
    # 提交审批: the reviewer's proposal with their opinion goes to the approvers' queue;
    # an approver decides it or returns it (退回) to review with a reason. (An approver
    # may still decide straight from review, as before: an authority whose one officer
    # reviews and approves; once a proposal is made, its maker cannot decide it.)
    (CaseState.UNDER_REVIEW, Action.SUBMIT_FOR_APPROVAL): (CaseState.PENDING_APPROVAL, _OFFICERS),
    (CaseState.PENDING_APPROVAL, Action.APPROVE): (
        CaseState.APPROVED,
        frozenset({Actor.APPROVER, Actor.SYSTEM}),
    ),
    (CaseState.PENDING_APPROVAL, Action.DENY): (
        CaseState.DENIED,
        frozenset({Actor.APPROVER, Actor.SYSTEM}),
    ),
    (CaseState.PENDING_APPROVAL, Action.RETURN_TO_REVIEW): (
        CaseState.UNDER_REVIEW,
        frozenset({Actor.APPROVER}),
    ),
    (CaseState.APPROVED, Action.ISSUE_RESULT): (CaseState.RESULT_ISSUED, _OFFICERS),
    (CaseState.DENIED, Action.ISSUE_RESULT): (CaseState.RESULT_ISSUED, _OFFICERS),
    (CaseState.RESULT_ISSUED, Action.DELIVER): (CaseState.DELIVERED, _OFFICERS),
    (CaseState.DELIVERED, Action.RATE): (CaseState.RATED, frozenset({Actor.APPLICANT})),
}

#: Actions whose comment is mandatory: a refusal, a correction request or a denial must say why.
REASON_REQUIRED = frozenset(
    {
        Action.REFUSE,
        Action.REQUEST_CORRECTION,
        Action.DENY,
        Action.SUBMIT_FOR_APPROVAL,  # the reviewer's opinion
        Action.RETURN_TO_REVIEW,
    }
)

#: States in which the statutory clock runs and the deadline is watched.
CLOCK_RUNNING = frozenset(
    {
        CaseState.ACCEPTED,
        CaseState.UNDER_REVIEW,
        CaseState.PENDING_APPROVAL,
        CaseState.APPROVED,
        CaseState.DENIED,
    }
)
#: The workbench's queues per officer duty: the states that wait on that duty, first the
#: duty's own (受理、审查 for reviewers; 审批 for approvers, who may also review).
DUTY_QUEUES = {
    "reviewer": (CaseState.SUBMITTED, CaseState.ACCEPTED, CaseState.UNDER_REVIEW),
    "approver": (
        CaseState.PENDING_APPROVAL,
        CaseState.SUBMITTED,
        CaseState.ACCEPTED,
        CaseState.UNDER_REVIEW,
    ),
}
#: How the workbench names an officer's duty.
DUTY_DESK_LABELS = {"reviewer": "受理、审查", "approver": "审批"}
TERMINAL = frozenset({CaseState.REFUSED, CaseState.RATED, CaseState.WITHDRAWN})
#: States waiting for the applicant's correction (补正).
AWAITING_CORRECTION = frozenset({CaseState.CORRECTION, CaseState.REVIEW_CORRECTION})
#: States after which the case is decided (for sub-task completion of 多地联办).
DECIDED = frozenset(
    {
        CaseState.APPROVED,
        CaseState.DENIED,
        CaseState.RESULT_ISSUED,
        CaseState.DELIVERED,
        CaseState.RATED,
        CaseState.REFUSED,
        CaseState.WITHDRAWN,
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
    #: 提交审批: whoever decides made the pending proposal themselves.
    own_proposal: bool = False


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


def _not_own_proposal(facts: StepFacts) -> DomainError | None:
    """Separate duties: the officer who proposed a decision (提交审批) does not decide it."""
    if not facts.own_proposal:
        return None
    return Conflict("审查与审批须由不同人员办理：不能审批本人提交的审批", type="own-proposal")


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
        *([_not_own_proposal] if a in (Action.APPROVE, Action.DENY) else []),
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
    approved = all(
        s not in (CaseState.DENIED, CaseState.REFUSED, CaseState.WITHDRAWN) for s in subtask_states
    )
    return JointOutcome(complete=True, approved=approved)


def rating_opens_rectification(score: int) -> bool:
    """好差评: 1 (非常不满意) and 2 (不满意) are 差评 and open a rectification item."""
    return score <= 2


# --- 差评整改: the authority's reply and the applicant's answer --------------------------


class RectState(StrEnum):
    """Where a rectification item (差评整改) stands; derived from the case's history, so
    both copies of a case know it."""

    OPEN = "open"  # 待答复 (also after the applicant said 未解决)
    REPLIED = "replied"  # 已答复，待申请人确认
    RESOLVED = "resolved"  # 申请人确认已解决
    ESCALATED = "escalated"  # 多次未解决：转督查督办


class RectAction(StrEnum):
    """The steps of the loop, recorded as events of the case (the case stays 已评价)."""

    REPLY = "rectification_reply"
    ACCEPT = "rectification_accepted"
    REOPEN = "rectification_reopened"
    ESCALATE = "rectification_escalated"


RECT_STATE_LABELS = {
    RectState.OPEN: "待主管部门答复",
    RectState.REPLIED: "主管部门已答复，待申请人确认",
    RectState.RESOLVED: "申请人确认已解决",
    RectState.ESCALATED: "申请人仍不满意，已转督查督办",
}
RECT_ACTION_LABELS = {
    RectAction.REPLY: "整改答复",
    RectAction.ACCEPT: "确认已解决",
    RectAction.REOPEN: "反馈未解决",
    RectAction.ESCALATE: "反馈未解决，转督查督办",
}

#: The applicant may say 未解决 this many times, each reopening the item for the authority;
#: the next 未解决 escalates it to the supervisor's view.
RECT_REOPENS_MAX = 2
#: Bounds of the authority's reply and of the applicant's reason, in characters.
RECT_TEXT_MAX = 1000


@dataclass(frozen=True)
class RectFacts:
    """What the loop's rules look at: the text given with the step and how often the
    item was reopened already."""

    text: str = ""
    reopens: int = 0


def _rect_text(field: str, missing: str) -> Guard:
    def check(facts: RectFacts) -> DomainError | None:
        text = facts.text.strip()
        if not text:
            return ValidationFailed(missing, errors=[FieldError(field, missing)])
        if len(text) > RECT_TEXT_MAX:
            message = f"不能超过 {RECT_TEXT_MAX} 字"
            return ValidationFailed(message, errors=[FieldError(field, message)])
        return None

    return check


def _may_reopen(facts: RectFacts) -> DomainError | None:
    if facts.reopens < RECT_REOPENS_MAX:
        return None
    return Conflict("已多次反馈未解决，本次将转督查督办", type="rectification-escalates")


def _must_escalate(facts: RectFacts) -> DomainError | None:
    if facts.reopens >= RECT_REOPENS_MAX:
        return None
    return Conflict("尚可退回主管部门重新整改", type="rectification-reopens")


_APPLICANT = frozenset({Actor.APPLICANT})
RECT_MACHINE: StateMachine[RectState, RectAction] = StateMachine(
    RectState,
    RectAction,
    {
        (RectState.OPEN, RectAction.REPLY): (RectState.REPLIED, _OFFICERS),
        (RectState.REPLIED, RectAction.ACCEPT): (RectState.RESOLVED, _APPLICANT),
        (RectState.REPLIED, RectAction.REOPEN): (RectState.OPEN, _APPLICANT),
        (RectState.REPLIED, RectAction.ESCALATE): (RectState.ESCALATED, _APPLICANT),
    },
    guards={
        RectAction.REPLY: [_rect_text("response", "请填写整改答复")],
        RectAction.REOPEN: [_rect_text("reason", "请说明仍未解决的问题"), _may_reopen],
        RectAction.ESCALATE: [_rect_text("reason", "请说明仍未解决的问题"), _must_escalate],
    },
    state_labels=RECT_STATE_LABELS,
    action_labels=RECT_ACTION_LABELS,
    noun="整改事项",
)


@dataclass(frozen=True)
class RectStatus:
    """The loop as the case's history tells it: its state and how often it reopened."""

    state: RectState
    reopens: int


def rectification_status(score: int | None, actions: list[str]) -> RectStatus | None:
    """Fold the case's event actions into the loop's state; None when the rating opened
    no item (no rating, or 3 stars and above)."""
    if score is None or not rating_opens_rectification(score):
        return None
    state, reopens = RectState.OPEN, 0
    for action in actions:
        rule = RECT_MACHINE.rule(state, RectAction(action)) if action in RECT_ACTIONS else None
        if rule is not None:  # the history holds only steps the machine allowed
            state = rule.target
            reopens += action == RectAction.REOPEN
    return RectStatus(state, reopens)


def rectification_answer(resolved: bool, reopens: int) -> RectAction:
    """The step the applicant's answer takes: 已解决, or 未解决 (reopened while it may be,
    escalated after that)."""
    if resolved:
        return RectAction.ACCEPT
    return RectAction.REOPEN if reopens < RECT_REOPENS_MAX else RectAction.ESCALATE


RECT_ACTIONS = frozenset(a.value for a in RectAction)
#: The loop's steps the applicant takes (on the receiving node's copy).
RECT_APPLICANT_ACTIONS = frozenset(
    {RectAction.ACCEPT.value, RectAction.REOPEN.value, RectAction.ESCALATE.value}
)


def validate_score(score: int) -> int:
    if not 1 <= score <= 5:
        raise ValueError("评价等级须为 1 至 5")
    return score


def case_number(city_code: str, day: str, seq: int) -> str:
    """Unique across the federation: the receiving city's GB/T 2260 code (each city is
    served by exactly one node), the day (YYYYMMDD) and the city's sequence that day."""
    return f"{city_code}{day}{seq:06d}"


# --- corrections (补正) ---------------------------------------------------------------

#: Bounds of the applicant's time to answer a correction, in working days.
CORRECTION_DAYS_MIN = 1
CORRECTION_DAYS_MAX = 30
CORRECTION_DAYS_DEFAULT = 15
#: Working days after the reminder before an unanswered correction closes the case.
CORRECTION_GRACE_DAYS = 5
#: At most this many items in one correction notice.
CORRECTION_ITEMS_MAX = 20


class CorrectionStage(StrEnum):
    """一次性告知: one correction notice per stage, listing everything at once."""

    INTAKE = "intake"  # 受理前补正
    REVIEW = "review"  # 审查中补正


def correction_stage(state: CaseState) -> CorrectionStage:
    """The stage a correction requested in `state` belongs to."""
    return CorrectionStage.REVIEW if state is CaseState.UNDER_REVIEW else CorrectionStage.INTAKE


@dataclass(frozen=True)
class CorrectionItem:
    """One missing or wrong material: a code (the matter's material code, or a new one
    for an item the matter does not list), its name and why it must be corrected."""

    code: str
    name: str
    reason: str
    #: Whether the item is one of the matter's declared materials.
    listed: bool = True


def check_correction(
    reason: str, items: list[CorrectionItem], days: int, earlier_stages: set[str], stage: str
) -> None:
    """The rules of a correction notice; raises a 422 naming each bad field, or a 409
    when this stage had its notice already (一次性告知)."""
    if stage in earlier_stages:
        raise Conflict(
            "一次性告知：本阶段已发出过补正通知，不能再次要求补正",
            type="correction-already-requested",
        )
    errors: list[FieldError] = []
    if not reason.strip():
        errors.append(FieldError("comment", "请填写补正原因"))
    if not items:
        errors.append(FieldError("items", "请至少列出一项需补正的材料"))
    if len(items) > CORRECTION_ITEMS_MAX:
        errors.append(FieldError("items", f"一次最多列出 {CORRECTION_ITEMS_MAX} 项"))
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not item.name.strip():
            errors.append(FieldError(f"items.{i}.name", "请填写材料名称"))
        if not item.reason.strip():
            errors.append(FieldError(f"items.{i}.reason", "请说明该项需补正的原因"))
        if item.code in seen:
            errors.append(FieldError(f"items.{i}.code", "同一材料只能列出一次"))
        seen.add(item.code)
    if not CORRECTION_DAYS_MIN <= days <= CORRECTION_DAYS_MAX:
        errors.append(
            FieldError(
                "deadline_days",
                f"补正期限须为 {CORRECTION_DAYS_MIN} 至 {CORRECTION_DAYS_MAX} 个工作日",
            )
        )
    if errors:
        raise ValidationFailed("补正通知不完整", errors=errors)


class CorrectionDue(StrEnum):
    """What the deadline job does with an open correction today."""

    WAIT = "wait"
    REMIND = "remind"
    WITHDRAW = "withdraw"


def correction_due(
    today: date, deadline: date, reminded_on: date | None, grace_end: date | None
) -> CorrectionDue:
    """An open correction past its deadline is first reminded; once reminded and past
    the grace period (`grace_end`, counted from the later of deadline and reminder), the
    case is closed as withdrawn. Never both on one run: the reminder always comes first."""
    if today <= deadline:
        return CorrectionDue.WAIT
    if reminded_on is None:
        return CorrectionDue.REMIND
    if grace_end is not None and today > grace_end:
        return CorrectionDue.WITHDRAW
    return CorrectionDue.WAIT


# --- the statutory clock --------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """The statutory clock of an accepted case: working days used of the limit, and
    since when it is paused (审查中补正), if it is."""

    limit: int
    used: int
    paused_since: date | None

    @property
    def remaining(self) -> int:
        return self.limit - self.used


def clock(limit: int, elapsed: int, paused_days: int, paused_since: date | None) -> Clock:
    """The clock of a case accepted `elapsed` working days ago (counted up to today, or
    up to the start of the current pause), of which `paused_days` were earlier pauses."""
    return Clock(limit=limit, used=max(0, elapsed - paused_days), paused_since=paused_since)
