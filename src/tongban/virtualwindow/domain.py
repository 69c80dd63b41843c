"""The rules of a virtual-window session (跨省远程虚拟窗口): its states, what each side may
do in each, and the guards on the facts of one step. Pure Python.

Every step of a session is an action of one machine, also the ones that leave the state
where it is (a form change, a lock, a chat line, a document, the identity check): one
place says who may do what when, and every step becomes an event of the session's
history (and so an entry of the audit chain)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tongban.errors import FieldError, ValidationFailed
from tongban.kernel.lifecycle import StateMachine


class State(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    ENDED = "ended"


class Action(StrEnum):
    START = "start"
    TAKE = "take"
    JOIN = "join"
    LEAVE = "leave"
    FORM = "form"
    LOCK = "lock"
    UNLOCK = "unlock"
    CHAT = "chat"
    DOCUMENT = "document"
    RECORDING = "recording"
    LICENCE = "licence"
    RECORD_IDENTITY = "record_identity"
    CONFIRM_IDENTITY = "confirm_identity"
    SUBMIT = "submit"
    LINK_CASE = "link_case"
    END = "end"


class Side(StrEnum):
    """Who acts in a session: the window clerk (on their own node) or the officer of the
    competent authority (on the node where the session lives)."""

    CLERK = "clerk"
    OFFICER = "officer"


STATE_LABELS = {
    State.QUEUED: "排队中",
    State.IN_PROGRESS: "进行中",
    State.SUBMITTED: "已提交",
    State.ENDED: "已结束",
}
ACTION_LABELS = {
    Action.START: "发起远程窗口",
    Action.TAKE: "接入",
    Action.JOIN: "进入会话",
    Action.LEAVE: "离开会话",
    Action.FORM: "填写表单",
    Action.LOCK: "锁定字段",
    Action.UNLOCK: "解锁字段",
    Action.CHAT: "文字交流",
    Action.DOCUMENT: "上传材料",
    Action.RECORDING: "录音录像片段",
    Action.LICENCE: "核验电子证照",
    Action.RECORD_IDENTITY: "登记身份核验",
    Action.CONFIRM_IDENTITY: "确认身份核验",
    Action.SUBMIT: "提交申请",
    Action.LINK_CASE: "关联办件",
    Action.END: "结束",
}
#: How the clerk checked the applicant's identity at the counter.
IDENTITY_METHODS = {
    "id_card_reader": "读取居民身份证（读卡器）",
    "e_licence": "核验电子身份证照",
    "face_match": "人证比对",
}

_BOTH = {Side.CLERK, Side.OFFICER}
_LIVE = State.IN_PROGRESS


@dataclass(frozen=True)
class Facts:
    """What a guard needs of one step: the session's identity check, the locked fields,
    the field a form change touches and who makes it."""

    side: Side
    identity_recorded: bool = False
    identity_confirmed: bool = False
    locked: frozenset[str] = field(default_factory=frozenset)
    fields: frozenset[str] = field(default_factory=frozenset)


def _identity_confirmed(facts: Facts) -> ValidationFailed | None:
    if facts.identity_confirmed:
        return None
    return ValidationFailed(
        "身份核验尚未经主管部门工作人员确认，不能提交申请",
        type="identity-not-confirmed",
        errors=[FieldError("identity", "请先登记并确认申请人身份核验")],
    )


def _identity_recorded(facts: Facts) -> str | None:
    return None if facts.identity_recorded else "窗口尚未登记身份核验方式，暂不能确认"


def _not_locked(facts: Facts) -> ValidationFailed | None:
    if facts.side is Side.OFFICER:
        return None
    hit = sorted(facts.fields & facts.locked)
    if not hit:
        return None
    return ValidationFailed(
        "该字段已被主管部门工作人员锁定，不能修改",
        type="field-locked",
        errors=[FieldError(f"form.{name}", "已锁定") for name in hit],
    )


MACHINE: StateMachine[State, Action] = StateMachine(
    State,
    Action,
    {
        (State.QUEUED, Action.TAKE): (State.IN_PROGRESS, {Side.OFFICER}),
        (State.QUEUED, Action.CHAT): (State.QUEUED, {Side.CLERK}),
        (State.QUEUED, Action.END): (State.ENDED, {Side.CLERK}),
        (_LIVE, Action.JOIN): (_LIVE, _BOTH),
        (_LIVE, Action.LEAVE): (_LIVE, _BOTH),
        (_LIVE, Action.FORM): (_LIVE, _BOTH),
        (_LIVE, Action.LOCK): (_LIVE, {Side.OFFICER}),
        (_LIVE, Action.UNLOCK): (_LIVE, {Side.OFFICER}),
        (_LIVE, Action.CHAT): (_LIVE, _BOTH),
        (_LIVE, Action.DOCUMENT): (_LIVE, {Side.CLERK}),
        (_LIVE, Action.RECORDING): (_LIVE, {Side.CLERK}),
        (_LIVE, Action.LICENCE): (_LIVE, {Side.CLERK}),
        (_LIVE, Action.RECORD_IDENTITY): (_LIVE, {Side.CLERK}),
        (_LIVE, Action.CONFIRM_IDENTITY): (_LIVE, {Side.OFFICER}),
        (_LIVE, Action.SUBMIT): (State.SUBMITTED, {Side.CLERK}),
        (_LIVE, Action.END): (State.ENDED, _BOTH),
        (State.SUBMITTED, Action.LINK_CASE): (State.SUBMITTED, {Side.CLERK}),
        (State.SUBMITTED, Action.CHAT): (State.SUBMITTED, _BOTH),
        (State.SUBMITTED, Action.LEAVE): (State.SUBMITTED, _BOTH),
        (State.SUBMITTED, Action.END): (State.ENDED, _BOTH),
    },
    guards={
        Action.SUBMIT: [_identity_confirmed],
        Action.CONFIRM_IDENTITY: [_identity_recorded],
        Action.FORM: [_not_locked],
    },
    state_labels=STATE_LABELS,
    action_labels=ACTION_LABELS,
    noun="远程窗口会话",
)

#: Longest chat line and form value kept (characters).
MAX_CHAT = 500
MAX_VALUE = 2000
