"""JSON API of mutual aid (互助调拨): requests, answers (commit or decline), shipments and
receipts. Thin: parse, call aid.py, render. The shapes follow OASIS EDXL-RM where they
fit (docs/emergency.md)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from tongban.emergency import access, aid
from tongban.emergency.models import AidRequest, Commitment, Shipment
from tongban.emergency.schemas import (
    BoxPublic,
    CommitIn,
    CommitmentPublic,
    DispatchIn,
    LinePublic,
    ReasonIn,
    ReceiptIn,
    ReceiptLinePublic,
    RequestIn,
    RequestPublic,
    RequestSummary,
    ShipmentPublic,
)
from tongban.kernel.history import EventPublic
from tongban.web.deps import CurrentUser, SessionDep
from tongban.web.problems import responses

router = APIRouter(prefix="/api/v1/emergency", tags=["emergency"], responses=responses(403, 404))


def _lines(lines: list[dict[str, object]]) -> list[LinePublic]:
    return [LinePublic(item_code=str(x["item"]), quantity=int(str(x["quantity"]))) for x in lines]


def _map_lines(mapping: dict[str, int]) -> list[LinePublic]:
    return [LinePublic(item_code=k, quantity=v) for k, v in mapping.items()]


def shipment_public(sh: Shipment) -> ShipmentPublic:
    counts = sh.counts or {}
    return ShipmentPublic(
        id=sh.id,
        number=sh.number,
        request_id=sh.request_id,
        commitment_id=sh.commitment_id,
        giver_jurisdiction=sh.giver_jurisdiction,
        requester_jurisdiction=sh.requester_jurisdiction,
        from_point_code=sh.from_point_code,
        from_point_name=sh.from_point_name,
        destination_code=sh.destination_code,
        vehicle=sh.vehicle,
        driver=sh.driver,
        contact=sh.contact,
        boxes=[
            BoxPublic(
                code=b["code"],
                item_code=b["item"],
                batch=b["batch"],
                expiry=date.fromisoformat(b["expiry"]) if b["expiry"] else None,
                quantity=int(b["quantity"]),
                counted=counts.get(b["code"]) if sh.counts is not None else None,
            )
            for b in sh.boxes
        ],
        state=sh.state,  # type: ignore[arg-type]
        dispatched_at=sh.dispatched_at,
        arrive_due_at=sh.arrive_due_at,
        received_at=sh.received_at,
        receipt=(
            [
                ReceiptLinePublic(
                    item_code=x["item"],
                    shipped=x["shipped"],
                    received=x["received"],
                    difference=x["difference"],
                )
                for x in sh.receipt
            ]
            if sh.receipt is not None
            else None
        ),
        receipt_note=sh.receipt_note,
        escalation_level=sh.escalation_level,
        version=sh.version,
        events=[EventPublic.model_validate(e) for e in sh.events],
    )


def commitment_public(c: Commitment) -> CommitmentPublic:
    return CommitmentPublic(
        id=c.id,
        number=c.number,
        giver_jurisdiction=c.giver_jurisdiction,
        giver_city=c.giver_city,
        state=c.state,  # type: ignore[arg-type]
        lines=_lines(c.lines),
        shipped=_map_lines(aid.shipped_of(c)),
        note=c.note,
        dispatch_due_at=c.dispatch_due_at,
        escalation_level=c.escalation_level,
        events=[EventPublic.model_validate(e) for e in c.events],
        shipments=[shipment_public(sh) for sh in c.shipments],
    )


def _summary(req: AidRequest) -> dict[str, object]:
    return {
        "id": req.id,
        "number": req.number,
        "requester_jurisdiction": req.requester_jurisdiction,
        "requester_city": req.requester_city,
        "urgency": req.urgency,
        "title": req.title,
        "state": req.state,
        "targets": list(req.targets),
        "created_at": req.created_at,
        "respond_due_at": req.respond_due_at,
        "arrive_due_at": req.arrive_due_at,
        "escalation_level": req.escalation_level,
        "replica": req.replica,
    }


def request_public(req: AidRequest) -> RequestPublic:
    return RequestPublic.model_validate(
        {
            **_summary(req),
            "destination_code": req.destination_code,
            "destination_name": req.destination_name,
            "destination_address": req.destination_address,
            "contact": req.contact,
            "lines": _lines(req.lines),
            "received": _map_lines(aid.received_of(req)),
            "commitments": [commitment_public(c) for c in req.commitments],
            "events": [EventPublic.model_validate(e) for e in req.events],
        }
    )


@router.get("/requests", response_model=list[RequestSummary])
def list_requests(
    actor: CurrentUser,
    session: SessionDep,
    state: Annotated[str | None, Query(pattern="^(open|closed|cancelled)$")] = None,
) -> list[RequestSummary]:
    """The requests this node holds: made by a city it serves, or asked of a
    jurisdiction it serves."""
    return [
        RequestSummary.model_validate(_summary(r))
        for r in aid.list_requests(session, actor, state=state)
    ]


@router.post("/requests", response_model=RequestPublic, status_code=201, responses=responses(422))
def request_aid(body: RequestIn, actor: CurrentUser, session: SessionDep) -> RequestPublic:
    """A city's coordinator asks one or several jurisdictions for supplies (EDXL-RM
    RequestResource)."""
    req = aid.request_aid(
        session,
        actor,
        city_code=body.city_code,
        destination_code=body.destination_code,
        urgency=body.urgency,
        title=body.title,
        contact=body.contact,
        lines=[(line.item_code, line.quantity) for line in body.lines],
        targets=body.targets,
    )
    return request_public(req)


@router.get("/requests/{request_id}", response_model=RequestPublic)
def get_request(request_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> RequestPublic:
    """A request with its answers, shipments and every event."""
    access.require_viewer(session, actor)
    return request_public(aid.get_request(session, request_id))


@router.post(
    "/requests/{request_id}/commitments",
    response_model=CommitmentPublic,
    status_code=201,
    responses=responses(409, 422),
)
def commit(
    request_id: uuid.UUID, body: CommitIn, actor: CurrentUser, session: SessionDep
) -> CommitmentPublic:
    """An asked jurisdiction commits supplies (EDXL-RM CommitResource)."""
    c = aid.commit(
        session, actor, request_id, [(x.item_code, x.quantity) for x in body.lines], body.note
    )
    return commitment_public(c)


@router.post(
    "/requests/{request_id}/decline",
    response_model=CommitmentPublic,
    status_code=201,
    responses=responses(409, 422),
)
def decline(
    request_id: uuid.UUID, body: ReasonIn, actor: CurrentUser, session: SessionDep
) -> CommitmentPublic:
    """An asked jurisdiction cannot help (EDXL-RM ResponseToRequestResource, Decline)."""
    return commitment_public(aid.decline(session, actor, request_id, body.reason))


@router.post(
    "/requests/{request_id}/cancel", response_model=RequestPublic, responses=responses(409, 422)
)
def cancel(
    request_id: uuid.UUID, body: ReasonIn, actor: CurrentUser, session: SessionDep
) -> RequestPublic:
    """The requester withdraws a request nothing was shipped for."""
    return request_public(aid.cancel(session, actor, request_id, body.reason))


@router.post(
    "/requests/{request_id}/close", response_model=RequestPublic, responses=responses(409, 422)
)
def close(
    request_id: uuid.UUID, body: ReasonIn, actor: CurrentUser, session: SessionDep
) -> RequestPublic:
    """The requester closes a request short."""
    return request_public(aid.close(session, actor, request_id, body.reason))


@router.post(
    "/commitments/{commitment_id}/shipments",
    response_model=ShipmentPublic,
    status_code=201,
    responses=responses(409, 422),
)
def dispatch(
    commitment_id: uuid.UUID, body: DispatchIn, actor: CurrentUser, session: SessionDep
) -> ShipmentPublic:
    """The giver dispatches a shipment of its commitment from one of its reserve points
    (EDXL-RM ReportResourceDeploymentStatus)."""
    sh = aid.dispatch(
        session,
        actor,
        commitment_id,
        point_code=body.point_code,
        vehicle=body.vehicle,
        driver=body.driver,
        contact=body.contact,
        lines=[aid.DispatchLine(x.item_code, x.quantity, x.per_box) for x in body.lines],
    )
    return shipment_public(sh)


@router.post(
    "/commitments/{commitment_id}/withdraw",
    response_model=CommitmentPublic,
    responses=responses(409, 422),
)
def withdraw(
    commitment_id: uuid.UUID, body: ReasonIn, actor: CurrentUser, session: SessionDep
) -> CommitmentPublic:
    """The giver withdraws a commitment nothing was shipped of."""
    return commitment_public(aid.withdraw(session, actor, commitment_id, body.reason))


@router.post(
    "/commitments/{commitment_id}/finish",
    response_model=CommitmentPublic,
    responses=responses(409, 422),
)
def finish(
    commitment_id: uuid.UUID, body: ReasonIn, actor: CurrentUser, session: SessionDep
) -> CommitmentPublic:
    """The giver ends dispatching short of its commitment."""
    return commitment_public(aid.finish(session, actor, commitment_id, body.reason))


@router.get("/shipments/{shipment_id}", response_model=ShipmentPublic)
def get_shipment(shipment_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> ShipmentPublic:
    """A shipment with its boxes, receipt and events."""
    access.require_viewer(session, actor)
    return shipment_public(aid.get_shipment(session, shipment_id))


@router.post(
    "/shipments/{shipment_id}/receipt",
    response_model=ShipmentPublic,
    responses=responses(409, 422),
)
def receive(
    shipment_id: uuid.UUID, body: ReceiptIn, actor: CurrentUser, session: SessionDep
) -> ShipmentPublic:
    """The requester receives a shipment: units counted per box, differences explained.
    Exactly once: a second receipt is refused (409)."""
    return shipment_public(aid.receive(session, actor, shipment_id, body.counts, body.note))
