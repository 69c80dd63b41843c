"""Incidents (突发事件联防联控) and hand-overs of person-related cases (协查移交), without a
database. Pure Python.

An incident has one writer, the lead jurisdiction's node: every step and every timeline
entry (also a participant's, which travels to the lead as a post the lead records) is
an event of the incident's kernel history, numbered by the lead and copied in that
order to every participant.

A hand-over has one writer too, the sender's node: the receiver's answer travels to the
sender as a message, and the sender records it. Ownership (see docs/emergency.md):

  offered     owner = sender   (the receiver shows 接收中 and cannot act)
  transferred owner = receiver (committed by the sender on the receiver's acceptance)
  refused     owner = sender
  withdrawn   owner = sender   (only from `offered`: never once the transfer is committed)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from tongban.errors import FieldError, ValidationFailed
from tongban.kernel.lifecycle import StateMachine

TEXT_MAX = 1000
TITLE_MAX = 120


class IncidentType(StrEnum):
    EPIDEMIC = "epidemic"
    FLOOD = "flood"
    CHEMICAL = "chemical"
    TYPHOON = "typhoon"
    OTHER = "other"


INCIDENT_TYPE_LABELS = {
    IncidentType.EPIDEMIC: "疫情聚集",
    IncidentType.FLOOD: "洪涝",
    IncidentType.CHEMICAL: "危化品事故",
    IncidentType.TYPHOON: "台风",
    IncidentType.OTHER: "其他突发事件",
}


class Severity(StrEnum):
    """The national four levels of a public emergency (突发事件分级)."""

    I = "I"  # noqa: E741 - the level's own name
    II = "II"
    III = "III"
    IV = "IV"


SEVERITY_LABELS = {
    Severity.I: "Ⅰ级（特别重大）",
    Severity.II: "Ⅱ级（重大）",
    Severity.III: "Ⅲ级（较大）",
    Severity.IV: "Ⅳ级（一般）",
}


class IncidentState(StrEnum):
    RESPONDING = "responding"
    HANDLING = "handling"
    CLOSED = "closed"


INCIDENT_STATE_LABELS = {
    IncidentState.RESPONDING: "响应中",
    IncidentState.HANDLING: "处置中",
    IncidentState.CLOSED: "已结束",
}


class IncidentAction(StrEnum):
    OPEN = "open"
    HANDLE = "handle"
    CLOSE = "close"
    #: A timeline entry (by the lead or a participant): the state does not move.
    ENTRY = "entry"
    #: A task given to a city: it becomes a work order on the node serving that city.
    TASK = "task"
    #: What became of a task's work order, reported by the node that holds it.
    TASK_UPDATE = "task_update"


INCIDENT_ACTION_LABELS = {
    IncidentAction.OPEN: "启动响应",
    IncidentAction.HANDLE: "转入处置",
    IncidentAction.CLOSE: "结束响应",
    IncidentAction.ENTRY: "记录",
    IncidentAction.TASK: "下达任务",
    IncidentAction.TASK_UPDATE: "任务进展",
}


class Role(StrEnum):
    """Who acts on an incident: a coordinator of the lead jurisdiction, one of a
    participant jurisdiction, or the system (a follow-up)."""

    LEAD = "lead"
    PARTICIPANT = "participant"
    SYSTEM = "system"


_L, _P, _S = Role.LEAD, Role.PARTICIPANT, Role.SYSTEM
_LIVE = (IncidentState.RESPONDING, IncidentState.HANDLING)

INCIDENT_MACHINE: StateMachine[IncidentState, IncidentAction] = StateMachine(
    IncidentState,
    IncidentAction,
    {
        (IncidentState.RESPONDING, IncidentAction.HANDLE): (IncidentState.HANDLING, {_L}),
        (IncidentState.RESPONDING, IncidentAction.CLOSE): (IncidentState.CLOSED, {_L}),
        (IncidentState.HANDLING, IncidentAction.CLOSE): (IncidentState.CLOSED, {_L}),
        **{(s, IncidentAction.ENTRY): (s, {_L, _P}) for s in _LIVE},
        # A participant's post sent before the close may arrive after it: still recorded
        # (the service refuses new entries on a closed incident).
        (IncidentState.CLOSED, IncidentAction.ENTRY): (IncidentState.CLOSED, {_P}),
        **{(s, IncidentAction.TASK): (s, {_L}) for s in _LIVE},
        # A work order may still move after the incident ended: its state is still told.
        **{(s, IncidentAction.TASK_UPDATE): (s, {_S}) for s in (*_LIVE, IncidentState.CLOSED)},
    },
    state_labels=INCIDENT_STATE_LABELS,
    action_labels=INCIDENT_ACTION_LABELS,
    noun="突发事件",
)


def incident_number(city: str, day: str, seq: int) -> str:
    """SJ, the lead city, the day (YYYYMMDD) and a 4-digit sequence."""
    return f"SJ{city}{day}{seq:04d}"


# --- hand-overs ------------------------------------------------------------------------------


class HandoverState(StrEnum):
    OFFERED = "offered"
    TRANSFERRED = "transferred"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


HANDOVER_STATE_LABELS = {
    HandoverState.OFFERED: "待接收",
    HandoverState.TRANSFERRED: "已移交",
    HandoverState.REFUSED: "已拒收",
    HandoverState.WITHDRAWN: "已撤回",
}


class HandoverAction(StrEnum):
    OFFER = "offer"
    #: The receiver accepted and the sender committed the transfer (one step, the sender's).
    ACCEPT = "accept"
    REFUSE = "refuse"
    WITHDRAW = "withdraw"
    #: A follow-up note (随访/管控记录) by the owner.
    FOLLOW_UP = "follow_up"


HANDOVER_ACTION_LABELS = {
    HandoverAction.OFFER: "发起移交",
    HandoverAction.ACCEPT: "接收方接收，移交生效",
    HandoverAction.REFUSE: "接收方拒收",
    HandoverAction.WITHDRAW: "撤回移交",
    HandoverAction.FOLLOW_UP: "跟进记录",
}


class Side(StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"


HANDOVER_MACHINE: StateMachine[HandoverState, HandoverAction] = StateMachine(
    HandoverState,
    HandoverAction,
    {
        (HandoverState.OFFERED, HandoverAction.ACCEPT): (HandoverState.TRANSFERRED, {Side.SENDER}),
        (HandoverState.OFFERED, HandoverAction.REFUSE): (HandoverState.REFUSED, {Side.SENDER}),
        (HandoverState.OFFERED, HandoverAction.WITHDRAW): (HandoverState.WITHDRAWN, {Side.SENDER}),
        # The owner's own notes: the sender's while it owns, the receiver's once it does.
        **{
            (s, HandoverAction.FOLLOW_UP): (s, {Side.SENDER})
            for s in (HandoverState.OFFERED, HandoverState.REFUSED, HandoverState.WITHDRAWN)
        },
        (HandoverState.TRANSFERRED, HandoverAction.FOLLOW_UP): (
            HandoverState.TRANSFERRED,
            {Side.RECEIVER},
        ),
    },
    state_labels=HANDOVER_STATE_LABELS,
    action_labels=HANDOVER_ACTION_LABELS,
    noun="协查移交",
)


def owner_side(state: HandoverState) -> Side:
    """Whose the case is in `state`: the receiver's only once the transfer is committed."""
    return Side.RECEIVER if state is HandoverState.TRANSFERRED else Side.SENDER


def handover_number(city: str, day: str, seq: int) -> str:
    """YJ, the sending city, the day and a 4-digit sequence."""
    return f"YJ{city}{day}{seq:04d}"


@dataclass(frozen=True)
class Purpose:
    """Why a case is handed over, and the only fields of the person it may carry."""

    code: str
    label: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


FIELD_LABELS = {
    "name": "姓名",
    "id_number": "身份证号",
    "phone": "联系电话",
    "exposure_date": "末次接触日期",
    "destination_address": "目的地住址",
    "index_case": "关联病例编号",
    "diagnosis_date": "确诊日期",
    "hospital": "收治医院",
}

PURPOSES = {
    p.code: p
    for p in (
        Purpose(
            "close_contact",
            "密切接触者跨地区协查管控",
            ("name", "id_number", "phone", "exposure_date", "destination_address"),
            ("index_case",),
        ),
        Purpose(
            "secondary_contact",
            "次密切接触者跨地区协查",
            ("name", "id_number", "phone", "destination_address"),
        ),
        Purpose(
            "case_transfer",
            "确诊病例属地转运救治",
            ("name", "id_number", "phone", "diagnosis_date", "hospital"),
        ),
    )
}


def minimise(purpose_code: str, data: dict[str, str]) -> dict[str, str]:
    """The person's fields a hand-over for `purpose_code` may carry, checked: every
    required field present, nothing the purpose does not need (422 naming the field)."""
    purpose = PURPOSES.get(purpose_code)
    if purpose is None:
        raise ValidationFailed("请选择移交目的", errors=[FieldError("purpose", "未知的移交目的")])
    errors = []
    for key in sorted(set(data) - set(purpose.fields)):
        if str(data[key]).strip():
            errors.append(FieldError(f"subject.{key}", f"“{purpose.label}”不需要该信息，请勿提供"))
    out: dict[str, str] = {}
    for key in purpose.fields:
        value = str(data.get(key) or "").strip()
        if not value:
            if key in purpose.required:
                errors.append(FieldError(f"subject.{key}", f"请填写{FIELD_LABELS[key]}"))
            continue
        if len(value) > 200:
            errors.append(FieldError(f"subject.{key}", "不超过 200 字"))
        if key.endswith("_date"):
            try:
                date.fromisoformat(value)
            except ValueError:
                errors.append(FieldError(f"subject.{key}", "日期格式应为 YYYY-MM-DD"))
        out[key] = value
    if errors:
        raise ValidationFailed("移交信息有误", errors=errors)
    return out


def mask_id(value: str) -> str:
    return value[:4] + "*" * max(len(value) - 8, 0) + value[-4:] if len(value) > 8 else value


__all__ = [
    "FIELD_LABELS",
    "HANDOVER_ACTION_LABELS",
    "HANDOVER_MACHINE",
    "HANDOVER_STATE_LABELS",
    "INCIDENT_ACTION_LABELS",
    "INCIDENT_MACHINE",
    "INCIDENT_STATE_LABELS",
    "INCIDENT_TYPE_LABELS",
    "PURPOSES",
    "SEVERITY_LABELS",
    "HandoverAction",
    "HandoverState",
    "IncidentAction",
    "IncidentState",
    "IncidentType",
    "Purpose",
    "Role",
    "Severity",
    "Side",
    "handover_number",
    "incident_number",
    "mask_id",
    "minimise",
    "owner_side",
]
