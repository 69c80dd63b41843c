"""Incidents (突发事件联防联控): a joint response spanning cities, with a lead
jurisdiction, participant jurisdictions, tasks that become work orders in the existing
loop, and a shared timeline.

One writer: the lead's node records every event of the incident — its own steps and
entries, the entries participants post (`emergency.incident.post`, a message to the
lead, recorded when it arrives) and what became of each task's work order. Each event
reaches every participant's copy as a kernel change, numbered by the lead, so every
node holds the same timeline in the same order. A task is projected from its event on
every node; the node serving the task's city turns it into a work order there
(tickets.service.report_task) and reports its number and state back as posts."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tongban.calendar import service as calendar
from tongban.config import Settings
from tongban.db import transaction, utcnow
from tongban.emergency import access, messages
from tongban.emergency.domain import Duty
from tongban.emergency.domain import incidents as domain
from tongban.emergency.domain.incidents import IncidentAction, IncidentState, Role
from tongban.emergency.incidents_models import Incident, IncidentTask
from tongban.emergency.record_copies import (
    as_uuid,
    follow_state,
    from_iso,
    iso,
    new_copy,
    record_copies,
)
from tongban.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import schema as s
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.kernel import history, numbering, replication
from tongban.kernel.history import SYSTEM, Who
from tongban.kernel.registry import Job
from tongban.regions import service as regions
from tongban.tickets import service as tickets

log = logging.getLogger(__name__)

POST = "emergency.incident.post"
MAX_CITIES = 41

# --- messages -------------------------------------------------------------------------------

Number = Annotated[str, StringConstraints(pattern=r"^SJ[0-9]{18}$")]
Text120 = Annotated[str, StringConstraints(max_length=120)]


Detail = Annotated[
    dict[Annotated[str, StringConstraints(max_length=30)], str | int | None], Field(max_length=20)
]


class TaskShared(s.Payload):
    task_id: s.Uuid
    position: Annotated[int, Field(ge=1, le=1000)]
    city: s.RegionCode
    jurisdiction: s.RegionCode
    category: Annotated[str, StringConstraints(max_length=40)]
    title: Text120
    description: Annotated[str, StringConstraints(max_length=domain.TEXT_MAX)]
    address: Annotated[str, StringConstraints(max_length=200)]
    work_order_number: Annotated[str, StringConstraints(max_length=32)] | None
    work_order_state: Annotated[str, StringConstraints(max_length=20)] | None
    work_order_label: Annotated[str, StringConstraints(max_length=40)] | None


class IncidentShared(s.Payload):
    incident_id: s.Uuid
    number: Number
    type: domain.IncidentType
    severity: domain.Severity
    title: Text120
    summary: s.ShortText
    lead_jurisdiction: s.RegionCode
    lead_city: s.RegionCode
    cities: Annotated[list[s.RegionCode], Field(min_length=1, max_length=MAX_CITIES)]
    participants: Annotated[list[s.RegionCode], Field(max_length=MAX_CITIES)]
    state: IncidentState
    created_at: s.Instant
    closed_at: s.Instant | None
    tasks: Annotated[list[TaskShared], Field(max_length=1000)] = []
    events: Annotated[list[replication.EventIn], Field(min_length=1, max_length=5000)]


class IncidentChanged(s.Payload):
    incident_id: s.Uuid
    number: Number
    seq: s.Seq
    event: replication.EventIn
    state: IncidentState
    closed_at: s.Instant | None
    updated_at: s.Instant
    #: What the event carries beyond the timeline: a task, a task's work-order state.
    detail: Detail | None = None


class IncidentPost(s.Payload):
    """A participant's entry, or its report of a task's work order, for the lead to record."""

    incident_id: s.Uuid
    post_id: s.Uuid
    author_jurisdiction: s.RegionCode
    author_name: Annotated[str, StringConstraints(max_length=80)]
    kind: Literal["entry", "task_status"]
    text: Annotated[str, StringConstraints(max_length=domain.TEXT_MAX)]
    task_id: s.Uuid | None = None
    work_order_number: Annotated[str, StringConstraints(max_length=32)] | None = None
    work_order_state: Annotated[str, StringConstraints(max_length=20)] | None = None
    work_order_label: Annotated[str, StringConstraints(max_length=40)] | None = None


def _bad(detail: str) -> exchange.Refused:
    return exchange.Refused("bad-payload", detail, 422)


def _check_shared(session: Session, p: IncidentShared, sender: exchange.Sender) -> None:
    if sender.target_jurisdiction not in p.participants:
        raise exchange.Refused("not-allowed", f"{sender.target_jurisdiction} 不是该事件的参与方")
    if p.lead_jurisdiction in p.participants:
        raise _bad("牵头辖区不能同时是参与方")
    if regions.get_city(session, p.lead_city).jurisdiction_code != p.lead_jurisdiction:
        raise _bad("牵头城市不属于牵头辖区")
    for ev in p.events:
        messages.check_step(domain.INCIDENT_MACHINE, IncidentAction.OPEN.value, ev)


def _check_changed(
    session: Session, p: IncidentChanged, sender: exchange.Sender, rec: Incident
) -> None:
    messages.check_step(domain.INCIDENT_MACHINE, IncidentAction.OPEN.value, p.event)


def _snapshot(session: Session, inc: Incident) -> dict[str, Any]:
    return {
        "incident_id": str(inc.id),
        "number": inc.number,
        "type": inc.type,
        "severity": inc.severity,
        "title": inc.title,
        "summary": inc.summary,
        "lead_jurisdiction": inc.lead_jurisdiction,
        "lead_city": inc.lead_city,
        "cities": list(inc.cities),
        "participants": list(inc.participants),
        "state": inc.state,
        "created_at": inc.created_at.isoformat(),
        "closed_at": iso(inc.closed_at),
        "tasks": [
            {
                "task_id": str(t.id),
                "position": t.position,
                "city": t.city_code,
                "jurisdiction": t.jurisdiction_code,
                "category": t.category_code,
                "title": t.title,
                "description": t.description,
                "address": t.address,
                "work_order_number": t.work_order_number,
                "work_order_state": t.work_order_state,
                "work_order_label": t.work_order_label,
            }
            for t in inc.tasks
        ],
    }


def _change(session: Session, inc: Incident, ev: history.EventRow) -> dict[str, Any]:
    return {
        "incident_id": str(inc.id),
        "number": inc.number,
        "state": inc.state,
        "closed_at": iso(inc.closed_at),
        "updated_at": inc.updated_at.isoformat(),
    }


def _create(session: Session, p: Mapping[str, Any]) -> Incident:
    inc = Incident(
        **new_copy(p, "incident_id"),
        type=str(p["type"]),
        severity=str(p["severity"]),
        title=p["title"],
        summary=p["summary"],
        lead_jurisdiction=p["lead_jurisdiction"],
        lead_city=p["lead_city"],
        cities=[str(c) for c in p["cities"]],
        participants=[str(j) for j in p["participants"]],
        closed_at=from_iso(p["closed_at"]),
        tasks=[],
    )
    session.add(inc)
    return inc


def _follow(session: Session, inc: Incident, p: Mapping[str, Any]) -> None:
    follow_state(inc, p)
    inc.closed_at = from_iso(p["closed_at"])


def _lane(p: Mapping[str, Any]) -> str:
    return f"incident:{p['incident_id']}"


INCIDENTS: replication.Copies[Incident] = record_copies(
    Incident,
    "incident",
    "突发事件",
    snapshot_schema=IncidentShared,
    change_schema=IncidentChanged,
    create=_create,
    follow=_follow,
    snapshot=_snapshot,
    change=_change,
    writer="lead_jurisdiction",
    check_snapshot=_check_shared,
    lane=_lane,
    check_change=_check_changed,
)


def _on_snapshot(session: Session, inc: Incident, created: bool, payload: Any, msg: Any) -> None:
    if created:
        for task in payload.get("tasks") or ():
            project(session, inc, IncidentAction.TASK.value, task)
            project(session, inc, IncidentAction.TASK_UPDATE.value, task)


def _on_change(session: Session, inc: Incident, payload: Any, msg: Any) -> None:
    # The copy's event stays as adopted (its audit digest is the lead's); the detail
    # travels beside it.
    project(session, inc, inc.events[-1].action, payload.get("detail") or {})


replication.register(INCIDENTS, on_snapshot=_on_snapshot, on_change=_on_change)


def _authorise_post(session: Session, p: IncidentPost, sender: exchange.Sender) -> None:
    inc = session.get(Incident, p.incident_id)
    if inc is None or inc.replica:
        raise exchange.Refused("not-allowed", "本节点不是该事件的牵头方")
    sender.require(p.author_jurisdiction, "该记录的作者辖区")
    if p.author_jurisdiction != sender.source_jurisdiction:
        raise _bad("作者辖区与发送辖区不符")
    if p.author_jurisdiction not in (inc.lead_jurisdiction, *inc.participants):
        raise exchange.Refused("not-allowed", f"{p.author_jurisdiction} 不是该事件的参与方")
    if p.kind == "task_status":
        task = session.get(IncidentTask, p.task_id) if p.task_id else None
        if task is None or task.incident_id != inc.id:
            raise _bad("任务不存在")
        if task.jurisdiction_code != p.author_jurisdiction:
            raise exchange.Refused("not-allowed", "只有任务所在辖区可以报告任务进展")


exchange.lane(POST, _lane)


@exchange.handler(POST, schema=IncidentPost, authorise=_authorise_post)
def on_post(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """The lead's node records a participant's post as the incident's next event."""
    inc = session.get(Incident, as_uuid(payload["incident_id"]))
    assert inc is not None  # authorised above
    j = regions.get_jurisdiction(session, payload["author_jurisdiction"])
    who = Who(None, f"{payload['author_name']}（{j.name}）"[:80], Role.PARTICIPANT.value)
    if payload["kind"] == "entry":
        _record(
            session,
            inc,
            IncidentAction.ENTRY,
            who,
            Role.PARTICIPANT,
            payload["text"],
            {"post_id": payload["post_id"], "author_jurisdiction": j.code},
        )
    else:
        _record(
            session,
            inc,
            IncidentAction.TASK_UPDATE,
            SYSTEM,
            Role.SYSTEM,
            payload["text"],
            _task_update(payload),
        )


def _task_update(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "task_id": str(p["task_id"]),
        "work_order_number": p["work_order_number"],
        "work_order_state": p["work_order_state"],
        "work_order_label": p["work_order_label"],
    }


# --- the lead's writes ---------------------------------------------------------------------


def _record(
    session: Session,
    inc: Incident,
    action: IncidentAction,
    who: Who,
    role: Role,
    comment: str = "",
    payload: dict[str, Any] | None = None,
) -> history.EventRow:
    before = IncidentState(inc.state)
    target = domain.INCIDENT_MACHINE.next_state(before, action, role)
    inc.state = target.value
    inc.updated_at = utcnow()
    if target is IncidentState.CLOSED and before is not target:
        inc.closed_at = inc.updated_at
    ev = history.record(
        session, inc, action.value, who, before.value, target.value, comment, payload
    )
    extra = {"detail": payload} if payload else None
    replication.share(session, INCIDENTS, inc, ev, inc.lead_jurisdiction, inc.participants, extra)
    project(session, inc, ev.action, payload or {})
    return ev


def project(session: Session, inc: Incident, action: str, p: Mapping[str, Any]) -> None:
    """What an event (its action and detail) means for this node beyond the timeline: a
    task row (and, on the node serving the task's city, its work order), a task's
    work-order state."""
    if action == IncidentAction.TASK.value:
        task = session.get(IncidentTask, as_uuid(p["task_id"]))
        if task is None:
            task = IncidentTask(
                id=as_uuid(p["task_id"]),
                incident_id=inc.id,
                position=int(p["position"]),
                jurisdiction_code=str(p["jurisdiction"]),
                city_code=str(p["city"]),
                category_code=str(p["category"]),
                title=str(p["title"]),
                description=str(p.get("description", "")),
                address=str(p.get("address", "")),
                updated_at=utcnow(),
            )
            inc.tasks.append(task)
            session.add(task)
            session.flush()
        if task.work_order_id is None and exchange.serves_here(session, task.jurisdiction_code):
            wo = tickets.report_task(
                session,
                category_code=task.category_code,
                city_code=task.city_code,
                description=f"【应急任务 {inc.number}】{task.title}\n{task.description}".strip(),
                address=task.address,
            )
            task.work_order_id = wo.id
            report_task_state(session, inc, task)
    elif action == IncidentAction.TASK_UPDATE.value:
        found = session.get(IncidentTask, as_uuid(p["task_id"]))
        if found is not None and p.get("work_order_number"):
            found.work_order_number = p.get("work_order_number")
            found.work_order_state = p.get("work_order_state")
            found.work_order_label = p.get("work_order_label")
            found.updated_at = utcnow()


def report_task_state(session: Session, inc: Incident, task: IncidentTask) -> bool:
    """Tell the lead what became of the task's work order (held on this node) when it
    changed since last told; True when something was told."""
    if task.work_order_id is None:
        return False
    state = tickets.work_order_state(session, task.work_order_id)
    if state is None:
        return False
    number, code, label = state
    if (task.work_order_number, task.work_order_state) == (number, code):
        return False
    task.work_order_number, task.work_order_state, task.work_order_label = number, code, label
    text = f"任务“{task.title}”工单 {number}：{label}"
    update = {
        "task_id": str(task.id),
        "work_order_number": number,
        "work_order_state": code,
        "work_order_label": label,
    }
    if exchange.serves_here(session, inc.lead_jurisdiction):
        _record(session, inc, IncidentAction.TASK_UPDATE, SYSTEM, Role.SYSTEM, text, update)
    else:
        _post(session, inc, task.jurisdiction_code, "系统", "task_status", text, update)
    return True


def _post(
    session: Session,
    inc: Incident,
    author_jurisdiction: str,
    author_name: str,
    kind: str,
    text: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    payload: dict[str, Any] = {
        "incident_id": str(inc.id),
        "post_id": str(uuid.uuid4()),
        "author_jurisdiction": author_jurisdiction,
        "author_name": author_name[:80],
        "kind": kind,
        "text": text[: domain.TEXT_MAX],
        **(extra or {}),
    }
    exchange.send(session, POST, author_jurisdiction, inc.lead_jurisdiction, payload)


def sync_tasks(session: Session) -> int:
    """Report every changed work-order state of the tasks this node holds; how many."""
    tasks = session.scalars(
        select(IncidentTask).where(IncidentTask.work_order_id.is_not(None))
    ).all()
    told = 0
    for task in tasks:
        if exchange.serves_here(session, task.jurisdiction_code):
            told += report_task_state(session, task.incident, task)
    return told


# --- use cases -----------------------------------------------------------------------------


def _lead_coordinator(session: Session, actor: Account, inc: Incident) -> None:
    if inc.replica or not exchange.serves_here(session, inc.lead_jurisdiction):
        raise PermissionDenied("只有牵头辖区可以办理", type="not-lead")
    if not _coordinates(session, actor, inc.lead_jurisdiction):
        raise PermissionDenied("须由牵头辖区的应急调度员办理", type="no-duty")


def _coordinates(session: Session, actor: Account, jurisdiction: str) -> bool:
    return any(j == jurisdiction for j, _ in access.cities_with(session, actor, Duty.COORDINATOR))


def open_incident(
    session: Session,
    actor: Account,
    *,
    type: str,
    severity: str,
    title: str,
    summary: str,
    lead_city: str,
    cities: list[str],
) -> Incident:
    """A coordinator of `lead_city` opens an incident spanning `cities`; every other
    jurisdiction among them takes part and gets a copy."""
    errors: list[FieldError] = []
    if type not in domain.IncidentType.__members__.values():
        errors.append(FieldError("type", "请选择事件类型"))
    if severity not in domain.Severity.__members__.values():
        errors.append(FieldError("severity", "请选择事件级别"))
    if not title.strip():
        errors.append(FieldError("title", "请填写事件名称"))
    elif len(title) > domain.TITLE_MAX:
        errors.append(FieldError("title", f"不超过 {domain.TITLE_MAX} 字"))
    if len(summary) > 2000:
        errors.append(FieldError("summary", "不超过 2000 字"))
    lead = regions.get_city(session, lead_city)
    jurisdictions: dict[str, None] = {}
    codes = list(dict.fromkeys([lead.code, *cities]))
    if len(codes) > MAX_CITIES:
        errors.append(FieldError("cities", f"最多 {MAX_CITIES} 个城市"))
    for code in codes:
        try:
            jurisdictions[regions.get_city(session, code).jurisdiction_code] = None
        except NotFound:
            errors.append(FieldError("cities", f"城市代码 {code} 不存在"))
    if errors:
        raise ValidationFailed("事件信息有误", errors=errors)
    if not exchange.serves_here(session, lead.jurisdiction_code):
        raise PermissionDenied(f"{lead.name}不由本节点服务", type="not-served-here")
    access.require(session, actor, Duty.COORDINATOR, lead.jurisdiction_code, lead.code)
    now = utcnow()
    day = calendar.local_date(now).strftime("%Y%m%d")
    seq = numbering.next_value(session, f"emergency.incident:{lead.code}", day)
    inc = Incident(
        number=domain.incident_number(lead.code, day, seq),
        type=type,
        severity=severity,
        title=title.strip(),
        summary=summary.strip(),
        lead_jurisdiction=lead.jurisdiction_code,
        lead_city=lead.code,
        cities=codes,
        participants=[j for j in jurisdictions if j != lead.jurisdiction_code],
        state=IncidentState.RESPONDING.value,
        replica=False,
        opened_by=actor.id,
        created_at=now,
        updated_at=now,
        events=[],
        tasks=[],
    )
    session.add(inc)
    session.flush()
    history.record(
        session,
        inc,
        IncidentAction.OPEN.value,
        history.who(actor, kind=Role.LEAD.value),
        None,
        inc.state,
        inc.summary,
    )
    replication.share(session, INCIDENTS, inc, None, inc.lead_jurisdiction, inc.participants)
    return inc


def step(
    session: Session, actor: Account, incident_id: uuid.UUID, action: str, note: str = ""
) -> Incident:
    """The lead moves the incident on: 转入处置 (handle) or 结束响应 (close)."""
    inc = get(session, actor, incident_id)
    _lead_coordinator(session, actor, inc)
    if action not in (IncidentAction.HANDLE.value, IncidentAction.CLOSE.value):
        raise ValidationFailed("未知的操作", errors=[FieldError("action", "未知的操作")])
    if action == IncidentAction.CLOSE.value and not note.strip():
        # Ending a joint response is final: never by a stray click.
        raise ValidationFailed("结束响应须说明情况", errors=[FieldError("note", "请填写结束说明")])
    _record(
        session,
        inc,
        IncidentAction(action),
        history.who(actor, kind=Role.LEAD.value),
        Role.LEAD,
        note.strip()[:2000],
    )
    return inc


def add_entry(session: Session, actor: Account, incident_id: uuid.UUID, text: str) -> bool:
    """A coordinator of the lead or of a participant adds to the timeline: recorded at
    once on the lead's node, else posted to it (True when recorded here already)."""
    inc = get(session, actor, incident_id)
    text = text.strip()
    if not text:
        raise ValidationFailed("请填写记录内容", errors=[FieldError("text", "请填写记录内容")])
    if len(text) > domain.TEXT_MAX:
        raise ValidationFailed(
            "记录过长", errors=[FieldError("text", f"不超过 {domain.TEXT_MAX} 字")]
        )
    if inc.state == IncidentState.CLOSED:
        raise Conflict("事件已结束，不能再添加记录", type="illegal-transition")
    author = _author(session, actor, inc)
    if author == inc.lead_jurisdiction or exchange.serves_here(session, inc.lead_jurisdiction):
        role = Role.LEAD if author == inc.lead_jurisdiction else Role.PARTICIPANT
        _record(
            session,
            inc,
            IncidentAction.ENTRY,
            history.who(actor, kind=role.value),
            role,
            text,
            {"author_jurisdiction": author},
        )
        return True
    _post(session, inc, author, actor.display_name, "entry", text)
    return False


def _author(session: Session, actor: Account, inc: Incident) -> str:
    """The jurisdiction `actor` writes for: the lead's or a participant's it coordinates
    and this node serves."""
    for j in (inc.lead_jurisdiction, *inc.participants):
        if exchange.serves_here(session, j) and _coordinates(session, actor, j):
            return j
    raise PermissionDenied("须由牵头或参与辖区的应急调度员记录", type="no-duty")


def add_task(
    session: Session,
    actor: Account,
    incident_id: uuid.UUID,
    *,
    city_code: str,
    category_code: str,
    title: str,
    description: str = "",
    address: str = "",
) -> IncidentTask:
    """The lead gives a city a task; it becomes a work order on the node serving that
    city (here at once when this node serves it)."""
    inc = get(session, actor, incident_id)
    _lead_coordinator(session, actor, inc)
    errors: list[FieldError] = []
    if city_code not in inc.cities:
        errors.append(FieldError("city_code", "任务城市须是事件涉及的城市"))
    if tickets.taxonomy(session).category(category_code) is None:
        errors.append(FieldError("category_code", "请选择工单类别"))
    if not title.strip():
        errors.append(FieldError("title", "请填写任务内容"))
    elif len(title) > domain.TITLE_MAX:
        errors.append(FieldError("title", f"不超过 {domain.TITLE_MAX} 字"))
    if len(description) > domain.TEXT_MAX:
        errors.append(FieldError("description", f"不超过 {domain.TEXT_MAX} 字"))
    if len(address) > 200:
        errors.append(FieldError("address", "不超过 200 字"))
    if errors:
        raise ValidationFailed("任务信息有误", errors=errors)
    city = regions.get_city(session, city_code)
    task_id = uuid.uuid4()
    _record(
        session,
        inc,
        IncidentAction.TASK,
        history.who(actor, kind=Role.LEAD.value),
        Role.LEAD,
        f"{city.name}：{title.strip()}",
        {
            "task_id": str(task_id),
            "position": len(inc.tasks) + 1,
            "city": city.code,
            "jurisdiction": city.jurisdiction_code,
            "category": category_code,
            "title": title.strip(),
            "description": description.strip(),
            "address": address.strip(),
        },
    )
    task = session.get(IncidentTask, task_id)
    assert task is not None
    return task


def may_view(session: Session, actor: Account) -> bool:
    return access.may_view(session, actor)


def get(session: Session, actor: Account, incident_id: uuid.UUID) -> Incident:
    inc = session.get(Incident, incident_id)
    if inc is None or not access.may_view(session, actor):
        raise NotFound("突发事件不存在或无权查看", type="unknown-incident")
    return inc


def list_incidents(session: Session, actor: Account, limit: int = 200) -> list[Incident]:
    """Incidents this node holds (led here or copies), live ones first, newest first."""
    access.require_viewer(session, actor)
    rows = session.scalars(select(Incident).order_by(Incident.created_at.desc()).limit(limit))
    return sorted(rows, key=lambda i: i.state == IncidentState.CLOSED)


def may_lead(session: Session, actor: Account, inc: Incident) -> bool:
    return (
        not inc.replica
        and exchange.serves_here(session, inc.lead_jurisdiction)
        and (_coordinates(session, actor, inc.lead_jurisdiction))
    )


def may_post(session: Session, actor: Account, inc: Incident) -> bool:
    if inc.state == IncidentState.CLOSED:
        return False
    try:
        _author(session, actor, inc)
    except PermissionDenied:
        return False
    return True


def public(session: Session, inc: Incident) -> dict[str, Any]:
    """What the API answers about an incident on this node."""
    return {
        "id": str(inc.id),
        "number": inc.number,
        "type": inc.type,
        "type_label": domain.INCIDENT_TYPE_LABELS[domain.IncidentType(inc.type)],
        "severity": inc.severity,
        "severity_label": domain.SEVERITY_LABELS[domain.Severity(inc.severity)],
        "title": inc.title,
        "summary": inc.summary,
        "lead_jurisdiction": inc.lead_jurisdiction,
        "lead_city": inc.lead_city,
        "cities": list(inc.cities),
        "participants": list(inc.participants),
        "state": inc.state,
        "state_label": domain.INCIDENT_STATE_LABELS[IncidentState(inc.state)],
        "replica": inc.replica,
        "created_at": inc.created_at.isoformat(),
        "closed_at": iso(inc.closed_at),
        "tasks": [
            {
                "id": str(t.id),
                "position": t.position,
                "city_code": t.city_code,
                "jurisdiction_code": t.jurisdiction_code,
                "category_code": t.category_code,
                "title": t.title,
                "work_order_number": t.work_order_number,
                "work_order_state": t.work_order_state,
                "work_order_label": t.work_order_label,
                "held_here": t.work_order_id is not None,
            }
            for t in inc.tasks
        ],
        "timeline": [
            {
                "seq": e.seq,
                "action": e.action,
                "action_label": domain.INCIDENT_ACTION_LABELS[IncidentAction(e.action)],
                "to_state": e.to_state,
                "actor_name": e.actor_name,
                "actor_role": e.actor_role,
                "text": e.comment,
                "at": e.at.isoformat(),
            }
            for e in inc.events
        ],
    }


def _sync_job(factory: sessionmaker[Session], settings: Settings) -> int:
    with transaction(factory) as session:
        return sync_tasks(session)


JOBS = [Job("emergency.incident_tasks", 30.0, _sync_job)]
