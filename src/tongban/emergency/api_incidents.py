"""JSON API of incidents (突发事件联防联控) and hand-overs (协查移交). Thin: parse, call
incidents.py / handover.py, render. A hand-over answers, on each node, who owns it by
this node's row (`owner_jurisdiction`), whether this row is the authority (the
sender's) and whether this node's staff may act (`may_act`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, StringConstraints

from tongban.emergency import handover, incidents
from tongban.web.deps import CurrentUser, SessionDep
from tongban.web.problems import responses

router = APIRouter(prefix="/api/v1/emergency", tags=["emergency"], responses=responses(403, 404))

Code6 = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class IncidentIn(BaseModel):
    type: str
    severity: str
    title: Annotated[str, StringConstraints(max_length=200)]
    summary: Annotated[str, StringConstraints(max_length=4000)] = ""
    lead_city: Code6
    cities: Annotated[list[Code6], Field(max_length=60)] = []


class StepIn(BaseModel):
    action: Annotated[str, StringConstraints(pattern=r"^(handle|close)$")]
    note: Annotated[str, StringConstraints(max_length=4000)] = ""


class EntryIn(BaseModel):
    text: Annotated[str, StringConstraints(max_length=4000)]


class TaskIn(BaseModel):
    city_code: Code6
    category_code: Annotated[str, StringConstraints(max_length=40)]
    title: Annotated[str, StringConstraints(max_length=200)]
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    address: Annotated[str, StringConstraints(max_length=400)] = ""


class HandoverIn(BaseModel):
    sender_city: Code6
    receiver_city: Code6
    purpose: Annotated[str, StringConstraints(max_length=30)]
    reason: Annotated[str, StringConstraints(max_length=4000)]
    subject: Annotated[
        dict[str, Annotated[str, StringConstraints(max_length=400)]], Field(max_length=20)
    ]
    incident_id: uuid.UUID | None = None


class AnswerIn(BaseModel):
    accept: bool
    note: Annotated[str, StringConstraints(max_length=4000)] = ""


class NoteIn(BaseModel):
    note: Annotated[str, StringConstraints(max_length=4000)]


@router.get("/incidents")
def list_incidents(actor: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    """Incidents this node holds (led here or copies), live ones first."""
    return [incidents.public(session, i) for i in incidents.list_incidents(session, actor)]


@router.post("/incidents", status_code=201, responses=responses(422))
def open_incident(body: IncidentIn, actor: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """A coordinator of the lead city opens an incident spanning cities."""
    inc = incidents.open_incident(
        session,
        actor,
        type=body.type,
        severity=body.severity,
        title=body.title,
        summary=body.summary,
        lead_city=body.lead_city,
        cities=body.cities,
    )
    return incidents.public(session, inc)


@router.get("/incidents/{incident_id}")
def get_incident(incident_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """An incident with its tasks (and their work orders' states) and its timeline."""
    return incidents.public(session, incidents.get(session, actor, incident_id))


@router.post("/incidents/{incident_id}/steps", responses=responses(409, 422))
def step(
    incident_id: uuid.UUID, body: StepIn, actor: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    """The lead moves the incident on (转入处置, 结束响应)."""
    return incidents.public(
        session, incidents.step(session, actor, incident_id, body.action, body.note)
    )


@router.post("/incidents/{incident_id}/entries", status_code=202, responses=responses(409, 422))
def add_entry(
    incident_id: uuid.UUID, body: EntryIn, actor: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    """A timeline entry: recorded at once on the lead's node, else sent to the lead
    (`recorded` false: it appears once the lead has recorded it)."""
    recorded = incidents.add_entry(session, actor, incident_id, body.text)
    return {"recorded": recorded}


@router.post("/incidents/{incident_id}/tasks", status_code=201, responses=responses(409, 422))
def add_task(
    incident_id: uuid.UUID, body: TaskIn, actor: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    """The lead gives a city a task; it becomes a work order on the node serving it."""
    task = incidents.add_task(
        session,
        actor,
        incident_id,
        city_code=body.city_code,
        category_code=body.category_code,
        title=body.title,
        description=body.description,
        address=body.address,
    )
    return incidents.public(session, task.incident)


@router.get("/handovers")
def list_handovers(actor: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    """Hand-overs this node holds that the caller may see."""
    return [handover.public(session, actor, h) for h in handover.list_handovers(session, actor)]


@router.post("/handovers", status_code=201, responses=responses(422))
def offer(body: HandoverIn, actor: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """Offer a person's case to the competent city (purpose-bound, minimised)."""
    h = handover.offer(
        session,
        actor,
        sender_city=body.sender_city,
        receiver_city=body.receiver_city,
        purpose=body.purpose,
        reason=body.reason,
        subject=dict(body.subject),
        incident_id=body.incident_id,
    )
    return handover.public(session, actor, h)


@router.get("/handovers/{handover_id}")
def get_handover(handover_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """A hand-over as this node holds it: state, owner, whether this node may act."""
    return handover.public(session, actor, handover.get(session, actor, handover_id))


@router.post("/handovers/{handover_id}/answer", status_code=202, responses=responses(409, 422))
def answer(
    handover_id: uuid.UUID, body: AnswerIn, actor: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    """The receiver accepts or refuses; the transfer takes effect when the sender's
    node has committed it."""
    h = handover.answer(session, actor, handover_id, accept=body.accept, note=body.note)
    return handover.public(session, actor, h)


@router.post("/handovers/{handover_id}/withdraw", responses=responses(409, 422))
def withdraw(
    handover_id: uuid.UUID, body: NoteIn, actor: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    """The sender withdraws an offer not yet accepted."""
    return handover.public(
        session, actor, handover.withdraw(session, actor, handover_id, body.note)
    )


@router.post("/handovers/{handover_id}/follow-ups", responses=responses(409, 422))
def follow_up(
    handover_id: uuid.UUID, body: NoteIn, actor: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    """A note by the jurisdiction owning the case (409 `not-owner` elsewhere)."""
    return handover.public(
        session, actor, handover.follow_up(session, actor, handover_id, body.note)
    )
