"""The rules of a life-event bundle (一件事) once submitted: the bundle's own lifecycle on the
kernel's state machine, the states of its steps, which step may start, which one a failure
blocks, and what a step's case means for it. Pure Python: no database, no web.

A bundle's definition (its steps, their order, the merged form) is `definitions.py`; here a
bundle is only its steps' keys, what each waits for, and their states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tongban.kernel.lifecycle import IllegalTransition, StateMachine

__all__ = ["IllegalTransition"]  # re-exported: what next_state raises


class BundleState(StrEnum):
    SUBMITTED = "submitted"  # 已提交
    IN_PROGRESS = "in_progress"  # 办理中
    BLOCKED = "blocked"  # 部分环节未通过：其余环节照常办理，受影响的环节不再启动
    COMPLETED = "completed"  # 已全部办结


class BundleAction(StrEnum):
    SUBMIT = "submit"
    PROGRESS = "progress"
    BLOCK = "block"
    COMPLETE = "complete"
    STEP_STARTED = "step_started"
    STEP_DONE = "step_done"
    STEP_FAILED = "step_failed"
    STEP_BLOCKED = "step_blocked"
    STEP_SKIPPED = "step_skipped"


class Who(StrEnum):
    APPLICANT = "applicant"
    SYSTEM = "system"


class StepState(StrEnum):
    WAITING = "waiting"  # its inputs have not all arrived
    STARTED = "started"  # its case is at the competent authority
    DONE = "done"  # its case was approved and the result delivered
    FAILED = "failed"  # its case was refused or denied
    BLOCKED = "blocked"  # it cannot start: an earlier step failed, or it could not be submitted
    SKIPPED = "skipped"  # the applicant did not ask for it (`when` not ticked)


STATE_LABELS = {
    BundleState.SUBMITTED: "已提交",
    BundleState.IN_PROGRESS: "办理中",
    BundleState.BLOCKED: "部分环节未通过",
    BundleState.COMPLETED: "已全部办结",
}

ACTION_LABELS = {
    BundleAction.SUBMIT: "提交申请",
    BundleAction.PROGRESS: "开始办理",
    BundleAction.BLOCK: "部分环节未通过",
    BundleAction.COMPLETE: "全部办结",
    BundleAction.STEP_STARTED: "环节已提交至主管部门",
    BundleAction.STEP_DONE: "环节已办结",
    BundleAction.STEP_FAILED: "环节未通过",
    BundleAction.STEP_BLOCKED: "环节无法办理",
    BundleAction.STEP_SKIPPED: "环节无需办理",
}

STEP_LABELS = {
    StepState.WAITING: "等待前序环节",
    StepState.STARTED: "办理中",
    StepState.DONE: "已办结",
    StepState.FAILED: "未通过",
    StepState.BLOCKED: "无法办理",
    StepState.SKIPPED: "无需办理",
}

#: A step in these states needs nothing more from the platform.
STEP_CLOSED = frozenset({StepState.DONE, StepState.FAILED, StepState.BLOCKED, StepState.SKIPPED})
#: A prerequisite in these states lets the steps after it go on.
STEP_SATISFIED = frozenset({StepState.DONE, StepState.SKIPPED})
#: A prerequisite in these states stops the steps after it for good.
STEP_STOPPED = frozenset({StepState.FAILED, StepState.BLOCKED})

_STEP_EVENTS = (
    BundleAction.STEP_STARTED,
    BundleAction.STEP_DONE,
    BundleAction.STEP_FAILED,
    BundleAction.STEP_BLOCKED,
    BundleAction.STEP_SKIPPED,
)
_SYSTEM = frozenset({Who.SYSTEM})

#: (state, action) -> (next state, who). A step's own event leaves the bundle where it is
#: (its record is the history); the bundle moves when its steps' states say so (`overall`).
TRANSITIONS: dict[tuple[BundleState, BundleAction], tuple[BundleState, frozenset[Who]]] = {
    (BundleState.SUBMITTED, BundleAction.PROGRESS): (BundleState.IN_PROGRESS, _SYSTEM),
    (BundleState.SUBMITTED, BundleAction.BLOCK): (BundleState.BLOCKED, _SYSTEM),
    (BundleState.SUBMITTED, BundleAction.COMPLETE): (BundleState.COMPLETED, _SYSTEM),
    (BundleState.IN_PROGRESS, BundleAction.BLOCK): (BundleState.BLOCKED, _SYSTEM),
    (BundleState.IN_PROGRESS, BundleAction.COMPLETE): (BundleState.COMPLETED, _SYSTEM),
    **{
        (s, a): (s, _SYSTEM)
        for s in (BundleState.SUBMITTED, BundleState.IN_PROGRESS, BundleState.BLOCKED)
        for a in _STEP_EVENTS
    },
}

MACHINE: StateMachine[BundleState, BundleAction] = StateMachine(
    BundleState,
    BundleAction,
    TRANSITIONS,
    state_labels=STATE_LABELS,
    action_labels=ACTION_LABELS,
    noun="一件事",
)

#: What a bundle's own move says in its history.
MOVE_NOTES = {
    BundleAction.PROGRESS: "各环节按顺序办理，前序环节办结后后续环节自动提交",
    BundleAction.BLOCK: "有环节未通过或无法提交，受影响的后续环节不再启动，其余环节照常办理",
    BundleAction.COMPLETE: "全部环节已办结",
}

#: Which bundle action brings the bundle into each state.
_ENTERED_BY = {
    BundleState.IN_PROGRESS: BundleAction.PROGRESS,
    BundleState.BLOCKED: BundleAction.BLOCK,
    BundleState.COMPLETED: BundleAction.COMPLETE,
}


def move_to(state: BundleState, target: BundleState) -> BundleAction | None:
    """The action that takes a bundle from `state` to `target` (None: it is there); raises
    IllegalTransition when the machine has no such step (a completed bundle never reopens)."""
    if state is target:
        return None
    action = _ENTERED_BY[target]
    MACHINE.next_state(state, action, Who.SYSTEM)
    return action


# --- the graph of steps -------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A step as the graph sees it: its key and the steps whose results it waits for."""

    key: str
    after: tuple[str, ...] = ()


def order(nodes: Sequence[Node]) -> list[str]:
    """The steps in an order where each comes after everything it waits for (stable: the
    declared order where it allows); ValueError naming the steps of a cycle or an unknown
    step."""
    keys = [n.key for n in nodes]
    known = set(keys)
    for n in nodes:
        unknown = [a for a in n.after if a not in known]
        if unknown:
            raise ValueError(f"step {n.key!r} waits for unknown steps {unknown}")
    placed: list[str] = []
    waiting = list(nodes)
    while waiting:
        ready = [n for n in waiting if all(a in placed for a in n.after)]
        if not ready:
            raise ValueError(f"steps wait for each other in a cycle: {[n.key for n in waiting]}")
        placed.append(ready[0].key)
        waiting.remove(ready[0])
    return placed


def _by_key(nodes: Sequence[Node]) -> dict[str, Node]:
    return {n.key: n for n in nodes}


def satisfied(nodes: Sequence[Node], states: Mapping[str, StepState], key: str) -> bool:
    """Whether the steps after `key` may use what it stands for: it is done, or it was
    not asked for and everything it would have waited for is satisfied (a skipped step
    passes its own inputs on, so the order between the others still holds)."""
    by_key = _by_key(nodes)

    def ok(k: str) -> bool:
        if states[k] is StepState.DONE:
            return True
        if states[k] is StepState.SKIPPED:
            return all(ok(a) for a in by_key[k].after)
        return False

    return ok(key)


def unmet(nodes: Sequence[Node], states: Mapping[str, StepState], key: str) -> list[str]:
    """The steps `key` still waits for (directly)."""
    return [a for a in _by_key(nodes)[key].after if not satisfied(nodes, states, a)]


def ready(nodes: Sequence[Node], states: Mapping[str, StepState]) -> list[str]:
    """Waiting steps whose inputs have all arrived: they may start now."""
    return [
        n.key
        for n in nodes
        if states[n.key] is StepState.WAITING and not unmet(nodes, states, n.key)
    ]


def doomed(nodes: Sequence[Node], states: Mapping[str, StepState]) -> dict[str, list[str]]:
    """Waiting steps that can never start because a step they wait for, directly or
    through others (waiting or skipped ones), failed or was blocked: step -> the failed
    or blocked steps that stop it (in declaration order)."""
    by_key = _by_key(nodes)
    memo: dict[str, list[str]] = {}

    def causes(key: str) -> list[str]:
        if key in memo:
            return memo[key]
        found: list[str] = []
        for a in by_key[key].after:
            if states[a] in STEP_STOPPED:
                found.append(a)
            elif states[a] in (StepState.WAITING, StepState.SKIPPED):
                found += causes(a)
        memo[key] = list(dict.fromkeys(found))
        return memo[key]

    out = {}
    for n in nodes:
        if states[n.key] is StepState.WAITING:
            c = causes(n.key)
            if c:
                out[n.key] = c
    return out


def dependants(nodes: Sequence[Node], key: str) -> list[str]:
    """Every step that waits for `key`, directly or through others (declaration order):
    what a failure of `key` blocks."""
    found: set[str] = set()
    grew = True
    while grew:
        grew = False
        for n in nodes:
            if n.key not in found and any(a == key or a in found for a in n.after):
                found.add(n.key)
                grew = True
    return [n.key for n in nodes if n.key in found]


def overall(states: Iterable[StepState]) -> BundleState:
    """Where a bundle stands given its steps: blocked once any step failed or cannot
    start, completed when every step is done (or not needed), else in progress."""
    values = list(states)
    if any(s in STEP_STOPPED for s in values):
        return BundleState.BLOCKED
    if values and all(s in STEP_SATISFIED for s in values):
        return BundleState.COMPLETED
    return BundleState.IN_PROGRESS


def is_open(states: Iterable[StepState]) -> bool:
    """Whether some step still waits or is being handled."""
    return any(s not in STEP_CLOSED for s in states)


# --- what a step's case means for the step ----------------------------------------------

#: Case states (cases.domain.CaseState values) in which the case can no longer succeed.
CASE_FAILED = frozenset({"refused", "denied"})
#: Case states in which an approved case's result has reached the applicant.
CASE_DELIVERED = frozenset({"delivered", "rated"})


def step_outcome(case_state: str, approved: bool) -> StepState:
    """The state of a step whose case is in `case_state` (`approved`: the case was
    approved at some point). A step is done when its result is delivered, so the e-licence
    a later step uses has been issued; a refusal or denial fails it at once."""
    if case_state in CASE_FAILED:
        return StepState.FAILED
    if case_state in CASE_DELIVERED:
        return StepState.DONE if approved else StepState.FAILED
    return StepState.STARTED


def bundle_number(city_code: str, day: str, seq: int) -> str:
    """`YJS` + the applicant's city (GB/T 2260) + the day + the city's sequence that day:
    unique across the federation, since each city is served by one node."""
    return f"YJS{city_code}{day}{seq:06d}"


#: A case's states as the applicant's pages name them (cases.domain.CaseState values).
CASE_STATE_LABELS = {
    "submitted": "已提交，待受理",
    "correction_requested": "待补正",
    "accepted": "已受理",
    "refused": "不予受理",
    "under_review": "审查中",
    "approved": "准予办理",
    "denied": "不予办理",
    "result_issued": "已出具结果",
    "delivered": "已送达",
    "rated": "已评价",
}
