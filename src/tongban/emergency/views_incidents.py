"""Pages of incidents (the emergency office's incident board: the list, one incident
with its tasks, their work orders' states and the shared timeline) and of hand-overs
(the list with the offer form; one hand-over with the answer, withdraw and follow-up
forms as this node may use them)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from tongban.emergency import access, handover, incidents
from tongban.emergency.domain import Duty
from tongban.emergency.domain import incidents as domain
from tongban.emergency.views import (
    RecordPage,
    after_form,
    denied,
    form_text,
    places,
    record_id,
    shown,
)
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.tickets import service as tickets
from tongban.web.deps import CsrfChecked, CurrentUser, SessionDep
from tongban.web.pages import render

router = APIRouter(include_in_schema=False)

DONE = {
    "opened": "事件已启动响应，参与辖区将收到事件。",
    "entry": "记录已添加。",
    "posted": "记录已发送至牵头辖区，记录后将显示在时间线中。",
    "task": "任务已下达，将在任务城市生成工单。",
    "step": "事件状态已更新。",
    "offered": "移交已发出，等待接收方答复；接收方接收前仍由本辖区负责。",
    "answered": "答复已发送至移交方；移交方确认后生效。",
    "withdrawn": "移交已撤回。",
    "followed": "跟进记录已保存。",
}


def incident_labels() -> dict[str, Any]:
    return {
        "types": {t.value: v for t, v in domain.INCIDENT_TYPE_LABELS.items()},
        "severities": {s.value: v for s, v in domain.SEVERITY_LABELS.items()},
        "states": {s.value: v for s, v in domain.INCIDENT_STATE_LABELS.items()},
        "actions": {a.value: v for a, v in domain.INCIDENT_ACTION_LABELS.items()},
        "handover_states": {s.value: v for s, v in domain.HANDOVER_STATE_LABELS.items()},
        "handover_actions": {a.value: v for a, v in domain.HANDOVER_ACTION_LABELS.items()},
        "purposes": domain.PURPOSES,
        "fields": domain.FIELD_LABELS,
    }


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    return form_text(form, name, limit)


def _my_cities(session: Session, user: Account) -> list[Any]:
    """Cities this node serves where `user` is a coordinator."""
    p = places(session)
    return [
        c
        for c in p["cities"]
        for j, city in access.cities_with(session, user, Duty.COORDINATOR)
        if c.jurisdiction_code == j and exchange.serves_here(session, j) and city in (None, c.code)
    ]


# --- incidents -----------------------------------------------------------------------------


def _board(
    request: Request,
    session: Session,
    user: Account,
    *,
    status_code: int = 200,
    **feedback: Any,
) -> Response:
    rows = incidents.list_incidents(session, user)
    return render(
        request,
        "emergency/incident_list.html",
        user,
        status_code=status_code,
        incidents=rows,
        my_cities=_my_cities(session, user),
        **shown(DONE, **feedback),
        labels=incident_labels(),
        **places(session),
    )


@router.get("/emergency/incidents")
def board(
    request: Request, session: SessionDep, user: CurrentUser, done: str | None = None
) -> Response:
    return _board(request, session, user, done=done)


@router.post("/emergency/incidents", dependencies=[CsrfChecked])
async def open_incident(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    kept: dict[str, Any] = {k: _text(form, k) for k in form if k != "csrf_token"}
    kept["cities"] = [str(c) for c in form.getlist("cities")]

    def step() -> str:
        inc = incidents.open_incident(
            session,
            user,
            type=_text(form, "type", 12),
            severity=_text(form, "severity", 4),
            title=_text(form, "title", 200),
            summary=_text(form, "summary"),
            lead_city=_text(form, "lead_city", 6),
            cities=kept["cities"],
        )
        return f"/emergency/incidents/{inc.id}?done=opened"

    return after_form(
        session,
        step,
        lambda **refused: _board(request, session, user, form=kept, **refused),
        passes_on=denied,
    )


def _incident_page(
    request: Request,
    session: Session,
    user: Account,
    incident_id: uuid.UUID,
    *,
    status_code: int = 200,
    **feedback: Any,
) -> Response:
    inc = incidents.get(session, user, incident_id)
    taxonomy = tickets.taxonomy(session)
    return render(
        request,
        "emergency/incident_detail.html",
        user,
        status_code=status_code,
        inc=inc,
        may_lead=incidents.may_lead(session, user, inc),
        may_post=incidents.may_post(session, user, inc),
        categories=list(taxonomy.categories.values()),
        handovers=[h for h in handover.list_handovers(session, user) if h.incident_id == inc.id],
        **shown(DONE, **feedback),
        labels=incident_labels(),
        **places(session),
    )


def _entry(session: Session, user: Account, iid: uuid.UUID, form: FormData) -> str:
    here = incidents.add_entry(session, user, iid, _text(form, "text", 4000))
    return "entry" if here else "posted"


def _task(session: Session, user: Account, iid: uuid.UUID, form: FormData) -> str:
    incidents.add_task(
        session,
        user,
        iid,
        city_code=_text(form, "city_code", 6),
        category_code=_text(form, "category_code", 40),
        title=_text(form, "title", 200),
        description=_text(form, "description", 4000),
        address=_text(form, "address", 400),
    )
    return "task"


def _incident_step(session: Session, user: Account, iid: uuid.UUID, form: FormData) -> str:
    incidents.step(session, user, iid, _text(form, "action", 12), _text(form, "note"))
    return "step"


RecordPage(
    "/emergency/incidents",
    _incident_page,
    {"entry": ("entry", _entry), "task": ("task", _task), "step": ("step", _incident_step)},
).add_routes(router)


# --- hand-overs ----------------------------------------------------------------------------


def _handover_list(
    request: Request,
    session: Session,
    user: Account,
    *,
    status_code: int = 200,
    **feedback: Any,
) -> Response:
    access.require_viewer(session, user)
    rows = handover.list_handovers(session, user)
    return render(
        request,
        "emergency/handover_list.html",
        user,
        status_code=status_code,
        handovers=rows,
        status={h.id: handover.status_here(session, h, _receives(session, user, h)) for h in rows},
        my_cities=_my_cities(session, user),
        open_incidents=[i for i in incidents.list_incidents(session, user) if i.state != "closed"],
        **shown(DONE, **feedback),
        labels=incident_labels(),
        **places(session),
    )


@router.get("/emergency/handovers")
def handovers(
    request: Request, session: SessionDep, user: CurrentUser, done: str | None = None
) -> Response:
    return _handover_list(request, session, user, done=done)


@router.post("/emergency/handovers", dependencies=[CsrfChecked])
async def offer(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    kept: dict[str, Any] = {k: _text(form, k) for k in form if k != "csrf_token"}
    purpose = _text(form, "purpose", 30)
    wanted = domain.PURPOSES[purpose].fields if purpose in domain.PURPOSES else ()
    subject = {k: _text(form, f"subject.{k}", 200) for k in domain.FIELD_LABELS if k in wanted}
    incident = _text(form, "incident_id", 40)

    def step() -> str:
        h = handover.offer(
            session,
            user,
            sender_city=_text(form, "sender_city", 6),
            receiver_city=_text(form, "receiver_city", 6),
            purpose=purpose,
            reason=_text(form, "reason"),
            subject=subject,
            incident_id=record_id(incident) if incident else None,
        )
        return f"/emergency/handovers/{h.id}?done=offered"

    return after_form(
        session,
        step,
        lambda **refused: _handover_list(request, session, user, form=kept, **refused),
        passes_on=denied,
    )


def _receives(session: Session, user: Account, h: Any) -> bool:
    """Whether `user` looks at `h` as its receiver (a coordinator there, not the sender's)."""
    mine = {j for j, _ in access.cities_with(session, user, Duty.COORDINATOR)}
    return h.receiver_jurisdiction in mine and h.sender_jurisdiction not in mine


def _handover_page(
    request: Request,
    session: Session,
    user: Account,
    handover_id: uuid.UUID,
    *,
    status_code: int = 200,
    **feedback: Any,
) -> Response:
    h = handover.get(session, user, handover_id)
    coordinates = {j for j, _ in access.cities_with(session, user, Duty.COORDINATOR)}
    receiving = exchange.serves_here(session, h.receiver_jurisdiction) and (
        h.receiver_jurisdiction in coordinates
    )
    sending = not h.replica and h.sender_jurisdiction in coordinates
    return render(
        request,
        "emergency/handover_detail.html",
        user,
        status_code=status_code,
        h=h,
        subject=handover.subject_for(session, user, h),
        status=handover.status_here(
            session, h, receiving and h.sender_jurisdiction not in coordinates
        ),
        may_act=handover.may_act(session, h) and h.owner_jurisdiction in coordinates,
        can_answer=receiving and h.state == "offered" and h.answer is None,
        can_withdraw=sending and h.state == "offered",
        **shown(DONE, **feedback),
        labels=incident_labels(),
        **places(session),
    )


def _answer(session: Session, user: Account, hid: uuid.UUID, form: FormData) -> str:
    accept = _text(form, "answer", 8) == "accept"
    handover.answer(session, user, hid, accept=accept, note=_text(form, "note"))
    return "answered"


def _withdraw(session: Session, user: Account, hid: uuid.UUID, form: FormData) -> str:
    handover.withdraw(session, user, hid, _text(form, "reason"))
    return "withdrawn"


def _follow_up(session: Session, user: Account, hid: uuid.UUID, form: FormData) -> str:
    handover.follow_up(session, user, hid, _text(form, "note"))
    return "followed"


RecordPage(
    "/emergency/handovers",
    _handover_page,
    {
        "answer": ("answer", _answer),
        "withdraw": ("withdraw", _withdraw),
        "follow-up": ("follow", _follow_up),
    },
).add_routes(router)
