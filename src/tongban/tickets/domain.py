"""The work-order (工单) state machine and its rules. Pure Python: no database, no web.

reported ─dispatch→ dispatched ─accept→ accepted ─start→ in_progress ─fix/partly_fix→
fixed | partly_fixed ─verify→ verified ─satisfied→ closed
                                        └unsatisfied→ reopened ─start→ in_progress …
dispatched ─return (退单)→ returned ─redispatch→ dispatched (another authority)
                                   └reject_return→ dispatched (the same authority)
fixed | partly_fixed ─reject_fix→ in_progress        reported ─merge→ merged
reported ─invalidate→ closed                         verified ─close_no_feedback→ closed
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tongban.errors import DomainError, FieldError, ValidationFailed
from tongban.kernel.lifecycle import Guard, StateMachine, reason_required
from tongban.kernel.lifecycle import IllegalTransition as IllegalTransition  # re-exported


class TicketState(StrEnum):
    REPORTED = "reported"  # 已上报，待派单
    DISPATCHED = "dispatched"  # 已派单，待签收
    RETURNED = "returned"  # 已退单，待审核
    ACCEPTED = "accepted"  # 已签收
    IN_PROGRESS = "in_progress"  # 处置中
    FIXED = "fixed"  # 已办结，待核查
    PARTLY_FIXED = "partly_fixed"  # 部分解决，待核查
    VERIFIED = "verified"  # 核查通过，待回访
    REOPENED = "reopened"  # 不满意，重新办理
    CLOSED = "closed"  # 已结案
    MERGED = "merged"  # 已合并至其他工单


class Action(StrEnum):
    DISPATCH = "dispatch"
    MERGE = "merge"
    INVALIDATE = "invalidate"
    ACCEPT = "accept"
    RETURN = "return"
    REDISPATCH = "redispatch"
    REJECT_RETURN = "reject_return"
    START = "start"
    FIX = "fix"
    PARTLY_FIX = "partly_fix"
    VERIFY = "verify"
    REJECT_FIX = "reject_fix"
    SATISFIED = "satisfied"
    UNSATISFIED = "unsatisfied"
    CLOSE_NO_FEEDBACK = "close_no_feedback"


class Actor(StrEnum):
    """Who acts, as far as the state machine cares."""

    REPORTER = "reporter"  # the resident who reported it (or every merged reporter)
    OPERATOR = "operator"  # 12345 hotline operator: records a caller's feedback (回访)
    DISPATCHER = "dispatcher"  # 派单员 of the city's 12345 centre
    AUTHORITY = "authority"  # staff of the lead authority
    SUPERVISOR = "supervisor"
    SYSTEM = "system"


class Channel(StrEnum):
    WEB = "web"  # resident page
    HOTLINE = "hotline"  # 12345 operator desk
    GRID = "grid"  # grid inspector (网格员)
    OPEN311 = "open311"  # Open311 GeoReport v2 API
    EMERGENCY = "emergency"  # a task of an emergency incident (emergency context)


class Resolution(StrEnum):
    FIXED = "fixed"
    PARTLY_FIXED = "partly_fixed"
    INVALID = "invalid"
    MERGED = "merged"


STATE_LABELS = {
    TicketState.REPORTED: "已上报，待派单",
    TicketState.DISPATCHED: "已派单，待签收",
    TicketState.RETURNED: "已退单，待审核",
    TicketState.ACCEPTED: "已签收",
    TicketState.IN_PROGRESS: "处置中",
    TicketState.FIXED: "已办结，待核查",
    TicketState.PARTLY_FIXED: "部分解决，待核查",
    TicketState.VERIFIED: "核查通过，待回访",
    TicketState.REOPENED: "不满意，重新办理",
    TicketState.CLOSED: "已结案",
    TicketState.MERGED: "已合并",
}

ACTION_LABELS = {
    Action.DISPATCH: "派单",
    Action.MERGE: "合并工单",
    Action.INVALIDATE: "作废（无效工单）",
    Action.ACCEPT: "签收",
    Action.RETURN: "退单",
    Action.REDISPATCH: "同意退单并改派",
    Action.REJECT_RETURN: "驳回退单",
    Action.START: "开始处置",
    Action.FIX: "办结",
    Action.PARTLY_FIX: "部分解决",
    Action.VERIFY: "核查通过",
    Action.REJECT_FIX: "核查不通过",
    Action.SATISFIED: "满意",
    Action.UNSATISFIED: "不满意",
    Action.CLOSE_NO_FEEDBACK: "逾期未评价，自动结案",
}

CHANNEL_LABELS = {
    Channel.WEB: "网上反映",
    Channel.HOTLINE: "12345热线",
    Channel.GRID: "网格巡查",
    Channel.OPEN311: "Open311 接口",
    Channel.EMERGENCY: "应急联动任务",
}

_FEEDBACK = frozenset({Actor.REPORTER, Actor.OPERATOR})
_DISPATCH = frozenset({Actor.DISPATCHER, Actor.SYSTEM})
_AUTH = frozenset({Actor.AUTHORITY})
_DISP = frozenset({Actor.DISPATCHER})

S, A = TicketState, Action
#: (state, action) -> (next state, who may take it)
TRANSITIONS: dict[tuple[TicketState, Action], tuple[TicketState, frozenset[Actor]]] = {
    (S.REPORTED, A.DISPATCH): (S.DISPATCHED, _DISPATCH),
    (S.REPORTED, A.MERGE): (S.MERGED, _DISPATCH | {Actor.REPORTER, Actor.OPERATOR}),
    (S.REPORTED, A.INVALIDATE): (S.CLOSED, _DISP),
    (S.DISPATCHED, A.MERGE): (S.MERGED, _DISP),
    (S.DISPATCHED, A.ACCEPT): (S.ACCEPTED, _AUTH),
    (S.DISPATCHED, A.RETURN): (S.RETURNED, _AUTH),
    (S.RETURNED, A.REDISPATCH): (S.DISPATCHED, _DISP),
    (S.RETURNED, A.REJECT_RETURN): (S.DISPATCHED, _DISP),
    (S.ACCEPTED, A.START): (S.IN_PROGRESS, _AUTH),
    (S.REOPENED, A.START): (S.IN_PROGRESS, _AUTH),
    (S.IN_PROGRESS, A.FIX): (S.FIXED, _AUTH),
    (S.IN_PROGRESS, A.PARTLY_FIX): (S.PARTLY_FIXED, _AUTH),
    (S.FIXED, A.VERIFY): (S.VERIFIED, _DISP),
    (S.PARTLY_FIXED, A.VERIFY): (S.VERIFIED, _DISP),
    (S.FIXED, A.REJECT_FIX): (S.IN_PROGRESS, _DISP),
    (S.PARTLY_FIXED, A.REJECT_FIX): (S.IN_PROGRESS, _DISP),
    (S.VERIFIED, A.SATISFIED): (S.CLOSED, _FEEDBACK),
    (S.VERIFIED, A.UNSATISFIED): (S.REOPENED, _FEEDBACK),
    (S.VERIFIED, A.CLOSE_NO_FEEDBACK): (S.CLOSED, frozenset({Actor.SYSTEM})),
}
del S, A

#: Actions whose comment is mandatory: whoever sends a work order back or closes it
#: without a fix must say why.
REASON_REQUIRED = frozenset(
    {
        Action.RETURN,
        Action.REJECT_RETURN,
        Action.PARTLY_FIX,
        Action.REJECT_FIX,
        Action.UNSATISFIED,
        Action.INVALIDATE,
    }
)
#: Actions that need at least one evidence photo (整改前后照片).
EVIDENCE_REQUIRED = frozenset({Action.FIX, Action.PARTLY_FIX})

#: States in which the handling clock runs and the deadline is watched.
CLOCK_RUNNING = frozenset(
    {
        TicketState.DISPATCHED,
        TicketState.ACCEPTED,
        TicketState.IN_PROGRESS,
        TicketState.REOPENED,
    }
)
#: States after which nothing more happens to a work order.
TERMINAL = frozenset({TicketState.CLOSED, TicketState.MERGED})
#: States that count as "open" for duplicates, Open311 and the hot-spot map.
OPEN_STATES = frozenset(s for s in TicketState if s not in TERMINAL)
#: States in which the lead authority and the co-handlers see the work order.
WITH_AUTHORITY = frozenset(
    s for s in TicketState if s not in (TicketState.REPORTED, TicketState.MERGED)
)


@dataclass(frozen=True)
class StepFacts:
    """What the rules of a step look at besides state and actor, from the request. The
    defaults know nothing, so a guarded step taken without facts is refused."""

    #: The reason or note given with the step.
    comment: str = ""
    #: How many evidence photos come with the step.
    photos: int = 0


#: No facts known: every guarded step is refused.
NO_FACTS = StepFacts()


def _evidence_attached(facts: StepFacts) -> DomainError | None:
    if facts.photos > 0:
        return None
    return ValidationFailed(
        "办结须上传处置后的现场照片",
        type="evidence-required",
        errors=[FieldError("photos", "请上传至少一张处置照片")],
    )


#: Per action, the rules on the step's facts, in the order they are checked.
GUARDS: dict[Action, list[Guard]] = {
    a: [
        *([reason_required(ACTION_LABELS[a])] if a in REASON_REQUIRED else []),
        *([_evidence_attached] if a in EVIDENCE_REQUIRED else []),
    ]
    for a in Action
}

#: The work-order lifecycle on the kernel's state machine.
MACHINE: StateMachine[TicketState, Action] = StateMachine(
    TicketState,
    Action,
    TRANSITIONS,
    guards=GUARDS,
    state_labels=STATE_LABELS,
    action_labels=ACTION_LABELS,
    noun="工单",
)


def next_state(
    state: TicketState, action: Action, actor: Actor, facts: StepFacts = NO_FACTS
) -> TicketState:
    """Where a work order goes when `actor` takes `action` with `facts`; raises
    IllegalTransition (a 409 problem+json), or a guard's 422 naming the missing input
    (`comment` for a reason, `photos` for evidence)."""
    return MACHINE.next_state(state, action, actor, facts)


def allowed_actions(state: TicketState, actor: Actor) -> list[Action]:
    """The actions `actor` may take on a work order in `state`, in a stable order (the
    worker's automatic closing is not offered to anyone)."""
    return [a for a in MACHINE.allowed_actions(state, actor) if a is not Action.CLOSE_NO_FEEDBACK]


def is_open(state: TicketState) -> bool:
    return state in OPEN_STATES


def open311_status(state: TicketState) -> str:
    """GeoReport v2 knows only `open` and `closed`; the richer state goes in status_notes."""
    return "closed" if state in TERMINAL else "open"


def work_order_number(city_code: str, day: str, seq: int) -> str:
    """Unique across the federation: 'GD', the city's GB/T 2260 code (one node serves a
    city), the day (YYYYMMDD) and the city's sequence that day."""
    return f"GD{city_code}{day}{seq:05d}"


def rate(numerator: int, denominator: int) -> float | None:
    """A share in [0, 1], or None when there is nothing to count."""
    return None if denominator == 0 else numerator / denominator
