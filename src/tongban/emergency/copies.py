"""The copies of mutual-aid records on the other side's node, declared once each on the
kernel's replication (`kernel.replication.Copies`): how a copy is made from a snapshot,
which fields a change moves, and which jurisdiction may share and change it.

- a request: shared by the requester's jurisdiction with each asked one; changed only by
  the requester's node;
- a commitment: shared by the giver's jurisdiction with the requester's; changed only by
  the giver's node;
- a shipment: shared by the giver's jurisdiction with the requester's at dispatch; from
  then on changed only by the requester's node (escalation, receipt), whose changes go
  back to the giver's copy. Each step of each record has exactly one writing node, so
  the two copies number their events alike (the kernel's per-record sequence).

The handlers are registered, with the follow-ups the context runs when a copy changes,
in aid.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from tongban.emergency import messages
from tongban.emergency.models import AidRequest, Commitment, Shipment
from tongban.emergency.record_copies import (
    as_uuid,
    follow_state,
    from_iso,
    iso,
    new_copy,
    record_copies,
)
from tongban.kernel import history, replication


def _aid_lane(p: Mapping[str, Any]) -> str:
    """The messages of one request (its own, its commitments', its shipments') travel in
    one lane, so a commitment never overtakes its request."""
    return f"aid:{p['request_id']}"


# --- requests ------------------------------------------------------------------------------


def request_snapshot(session: Session, r: AidRequest) -> dict[str, Any]:
    return {
        "request_id": str(r.id),
        "number": r.number,
        "requester_jurisdiction": r.requester_jurisdiction,
        "requester_city": r.requester_city,
        "destination_code": r.destination_code,
        "destination_name": r.destination_name,
        "destination_address": r.destination_address,
        "urgency": r.urgency,
        "title": r.title,
        "contact": r.contact,
        "lines": [dict(line) for line in r.lines],
        "targets": list(r.targets),
        "state": r.state,
        "respond_due_at": r.respond_due_at.isoformat(),
        "arrive_due_at": r.arrive_due_at.isoformat(),
        "escalation_level": r.escalation_level,
        "created_at": r.created_at.isoformat(),
        "closed_at": iso(r.closed_at),
    }


def request_change(session: Session, r: AidRequest, ev: history.EventRow) -> dict[str, Any]:
    return {
        "request_id": str(r.id),
        "number": r.number,
        "state": r.state,
        "escalation_level": r.escalation_level,
        "closed_at": iso(r.closed_at),
        "updated_at": r.updated_at.isoformat(),
    }


def _create_request(session: Session, p: Mapping[str, Any]) -> AidRequest:
    r = AidRequest(
        **new_copy(p, "request_id"),
        requester_jurisdiction=p["requester_jurisdiction"],
        requester_city=p["requester_city"],
        destination_code=p["destination_code"],
        destination_name=p["destination_name"],
        destination_address=p["destination_address"],
        urgency=str(p["urgency"]),
        title=p["title"],
        contact=p["contact"],
        lines=[{"item": str(x["item"]), "quantity": int(x["quantity"])} for x in p["lines"]],
        targets=[str(t) for t in p["targets"]],
        respond_due_at=from_iso(p["respond_due_at"]),
        arrive_due_at=from_iso(p["arrive_due_at"]),
        escalation_level=int(p["escalation_level"]),
        closed_at=from_iso(p["closed_at"]),
        commitments=[],
    )
    session.add(r)
    return r


def _follow_request(session: Session, r: AidRequest, p: Mapping[str, Any]) -> None:
    follow_state(r, p)
    r.escalation_level = int(p["escalation_level"])
    r.closed_at = from_iso(p["closed_at"])


REQUESTS: replication.Copies[AidRequest] = record_copies(
    AidRequest,
    "request",
    "互助请求",
    snapshot_schema=messages.RequestShared,
    change_schema=messages.RequestChanged,
    create=_create_request,
    follow=_follow_request,
    snapshot=request_snapshot,
    change=request_change,
    writer="requester_jurisdiction",
    check_snapshot=messages.check_request_shared,
    lane=_aid_lane,
    check_change=messages.check_request_changed,
)


# --- commitments ---------------------------------------------------------------------------


def commitment_snapshot(session: Session, c: Commitment) -> dict[str, Any]:
    return {
        "commitment_id": str(c.id),
        "request_id": str(c.request_id),
        "number": c.number,
        "giver_jurisdiction": c.giver_jurisdiction,
        "giver_city": c.giver_city,
        "state": c.state,
        "lines": [dict(line) for line in c.lines],
        "note": c.note,
        "dispatch_due_at": iso(c.dispatch_due_at),
        "escalation_level": c.escalation_level,
        "created_at": c.created_at.isoformat(),
    }


def commitment_change(session: Session, c: Commitment, ev: history.EventRow) -> dict[str, Any]:
    return {
        "commitment_id": str(c.id),
        "request_id": str(c.request_id),
        "number": c.number,
        "state": c.state,
        "note": c.note,
        "escalation_level": c.escalation_level,
        "updated_at": c.updated_at.isoformat(),
    }


def _create_commitment(session: Session, p: Mapping[str, Any]) -> Commitment:
    req = messages.request_of(session, as_uuid(p["request_id"]))
    c = Commitment(
        **new_copy(p, "commitment_id"),
        request_id=req.id,
        giver_jurisdiction=p["giver_jurisdiction"],
        giver_city=p["giver_city"],
        lines=[{"item": str(x["item"]), "quantity": int(x["quantity"])} for x in p["lines"]],
        note=p["note"],
        dispatch_due_at=from_iso(p["dispatch_due_at"]),
        escalation_level=int(p["escalation_level"]),
        shipments=[],
    )
    req.commitments.append(c)
    session.add(c)
    return c


def _follow_commitment(session: Session, c: Commitment, p: Mapping[str, Any]) -> None:
    follow_state(c, p)
    c.note = p["note"]
    c.escalation_level = int(p["escalation_level"])


COMMITMENTS: replication.Copies[Commitment] = record_copies(
    Commitment,
    "commitment",
    "调拨承诺",
    snapshot_schema=messages.CommitmentShared,
    change_schema=messages.CommitmentChanged,
    create=_create_commitment,
    follow=_follow_commitment,
    snapshot=commitment_snapshot,
    change=commitment_change,
    writer="giver_jurisdiction",
    check_snapshot=messages.check_commitment_shared,
    lane=_aid_lane,
    check_change=messages.check_commitment_changed,
)


# --- shipments -----------------------------------------------------------------------------


def shipment_snapshot(session: Session, sh: Shipment) -> dict[str, Any]:
    return {
        "shipment_id": str(sh.id),
        "request_id": str(sh.request_id),
        "commitment_id": str(sh.commitment_id),
        "number": sh.number,
        "giver_jurisdiction": sh.giver_jurisdiction,
        "requester_jurisdiction": sh.requester_jurisdiction,
        "from_point_code": sh.from_point_code,
        "from_point_name": sh.from_point_name,
        "from_city": sh.from_city,
        "destination_code": sh.destination_code,
        "vehicle": sh.vehicle,
        "driver": sh.driver,
        "contact": sh.contact,
        "boxes": [dict(b) for b in sh.boxes],
        "state": sh.state,
        "dispatched_at": sh.dispatched_at.isoformat(),
        "arrive_due_at": sh.arrive_due_at.isoformat(),
        **_receipt(sh),
        "escalation_level": sh.escalation_level,
        "created_at": sh.created_at.isoformat(),
    }


def _receipt(sh: Shipment) -> dict[str, Any]:
    return {
        "received_at": iso(sh.received_at),
        "counts": dict(sh.counts) if sh.counts is not None else None,
        "receipt": [dict(x) for x in sh.receipt] if sh.receipt is not None else None,
        "receipt_note": sh.receipt_note,
    }


def shipment_change(session: Session, sh: Shipment, ev: history.EventRow) -> dict[str, Any]:
    return {
        "shipment_id": str(sh.id),
        "request_id": str(sh.request_id),
        "number": sh.number,
        "state": sh.state,
        **_receipt(sh),
        "escalation_level": sh.escalation_level,
        "updated_at": sh.updated_at.isoformat(),
    }


def _box(b: Mapping[str, Any]) -> dict[str, Any]:
    expiry = b.get("expiry")
    if isinstance(expiry, date):
        expiry = expiry.isoformat()
    return {
        "code": str(b["code"]),
        "item": str(b["item"]),
        "batch": str(b["batch"]),
        "expiry": expiry,
        "quantity": int(b["quantity"]),
    }


def _create_shipment(session: Session, p: Mapping[str, Any]) -> Shipment:
    c = messages.commitment_of(session, as_uuid(p["commitment_id"]))
    sh = Shipment(
        **new_copy(p, "shipment_id"),
        request_id=c.request_id,
        commitment_id=c.id,
        giver_jurisdiction=p["giver_jurisdiction"],
        requester_jurisdiction=p["requester_jurisdiction"],
        from_point_code=p["from_point_code"],
        from_point_name=p["from_point_name"],
        from_city=p["from_city"],
        destination_code=p["destination_code"],
        vehicle=p["vehicle"],
        driver=p["driver"],
        contact=p["contact"],
        boxes=[_box(b) for b in p["boxes"]],
        dispatched_at=from_iso(p["dispatched_at"]),
        arrive_due_at=from_iso(p["arrive_due_at"]),
        escalation_level=int(p["escalation_level"]),
    )
    _follow_receipt(sh, p)
    c.shipments.append(sh)
    session.add(sh)
    return sh


def _follow_receipt(sh: Shipment, p: Mapping[str, Any]) -> None:
    sh.received_at = from_iso(p["received_at"])
    counts = p["counts"]
    sh.counts = {str(k): int(v) for k, v in counts.items()} if counts is not None else None
    sh.receipt = [dict(x) for x in p["receipt"]] if p["receipt"] is not None else None
    sh.receipt_note = p["receipt_note"]


def _follow_shipment(session: Session, sh: Shipment, p: Mapping[str, Any]) -> None:
    follow_state(sh, p)
    _follow_receipt(sh, p)
    sh.escalation_level = int(p["escalation_level"])


SHIPMENTS: replication.Copies[Shipment] = record_copies(
    Shipment,
    "shipment",
    "发运单",
    snapshot_schema=messages.ShipmentShared,
    change_schema=messages.ShipmentChanged,
    create=_create_shipment,
    follow=_follow_shipment,
    snapshot=shipment_snapshot,
    change=shipment_change,
    writer="giver_jurisdiction",
    changed_by=messages.shipment_writer,
    check_snapshot=messages.check_shipment_shared,
    lane=_aid_lane,
    check_change=messages.check_shipment_changed,
)
