"""A case on two nodes: the receiving node (where the applicant's account lives) and the
competent node (where the authority handles it) each hold a copy, kept in step by
exchange messages. On one node both copies are the same row, and every function here
finds nothing to do.

- `case.forwarded` carries a snapshot (applicant, form, events, materials) from which the
  competent node creates its copy, with the same id and number;
- `case.status_changed` carries one new event with its sequence number: a copy appends
  it when it is the next one, ignores it when it has it already, and asks for a later
  delivery (OutOfOrder -> retried) when an earlier one is still missing.

多地联办 across nodes: the lead authority's node (the parent's competent node) also holds
a copy of each sub-task, created from the sub-tasks' snapshots carried by the parent's
`case.forwarded`, and linked to its parent there. Every step of a sub-task reaches it:
the node that holds the parent without being the lead's node (the receiving node, which
sees every step of the sub-task) sends it on with `case.status_changed`. So the lead's
approve guard and the automatic decision of the whole case (`joint_outcome`) work on
the lead's node, and that decision flows back to the receiving node like any other.

Materials travel inside the message, base64, added only when the message leaves the
node over HTTP (`exchange.outgoing`), and are stored by content hash on arrival after
their SHA-256 is checked.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases.attachments import blob_path, safe_filename, sniff, write_blob
from tongban.cases.domain import DECIDED, Action, CaseState, rating_opens_rectification
from tongban.cases.models import Attachment, Case, CaseEvent, Rating, Rectification
from tongban.config import Settings
from tongban.errors import NotFound, ValidationFailed
from tongban.exchange import service as exchange
from tongban.kernel import history
from tongban.kernel.node import settings_of
from tongban.regions import service as regions

MSG_FORWARD = "case.forwarded"
MSG_STATUS = "case.status_changed"

#: Case columns a status change may move, copied as they are on the acting node.
_TRACKED = ("state", "handoff", "result_text", "form_data", "deadline_flag")


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_dict(ev: CaseEvent) -> dict[str, Any]:
    return {
        "id": str(ev.id),
        "seq": ev.seq,
        "action": ev.action,
        "from_state": ev.from_state,
        "to_state": ev.to_state,
        "actor_name": ev.actor_name,
        "actor_role": ev.actor_role,
        "comment": ev.comment,
        "at": ev.at.isoformat(),
    }


def attachment_dicts(case: Case) -> list[dict[str, Any]]:
    return [
        {
            "material_code": a.material_code,
            "filename": a.filename,
            "sha256": a.sha256,
            "size": a.size,
            "content_type": a.content_type,
        }
        for a in case.attachments
    ]


def snapshot_extra(session: Session, case: Case) -> dict[str, Any]:
    """What the competent node needs beyond the case's summary to make its own copy."""
    return {
        "authority_code": regions.get_authority(session, case.authority_id).code,
        "events": [event_dict(e) for e in case.events],
    }


def status_payload(
    case: Case, ev: CaseEvent, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A `case.status_changed` payload: the new event and the case fields it moved."""
    payload: dict[str, Any] = {
        "number": case.number,
        "state": case.state,
        "seq": ev.seq,
        "action": ev.action,
        "comment": ev.comment,
        "event": event_dict(ev),
        "case": {
            **{c: getattr(case, c) for c in _TRACKED},
            "accepted_at": _iso(case.accepted_at),
            "deadline": _iso(case.deadline),
            "closed_at": _iso(case.closed_at),
        },
    }
    if ev.action == Action.RESUBMIT:
        payload["attachments"] = attachment_dicts(case)
    if extra:
        payload.update(extra)
    return payload


# --- materials -------------------------------------------------------------------------


def _add_contents(session: Session, payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    items = payload.get("attachments")
    if not items:
        return payload
    out = []
    for item in items:
        path = blob_path(Path(settings.upload_dir), item["sha256"])
        data = path.read_bytes()  # FileNotFoundError: retried, and visible in last_error
        if len(data) > settings.max_upload_bytes:
            raise ValueError(f"material {item['sha256']} exceeds max_upload_bytes")
        out.append({**item, "content_b64": base64.b64encode(data).decode("ascii")})
    return {**payload, "attachments": out}


exchange.outgoing(MSG_FORWARD)(_add_contents)
exchange.outgoing(MSG_STATUS)(_add_contents)


def _store_blob(session: Session, upload_dir: Path, item: dict[str, Any], max_bytes: int) -> None:
    path = blob_path(upload_dir, item["sha256"])  # a SHA-256 under upload_dir, or raises
    if path.exists():
        return
    encoded = item.get("content_b64")
    if not isinstance(encoded, str):
        raise ValueError(f"material {item['sha256']} arrived without its content")
    data = base64.b64decode(encoded, validate=True)
    if len(data) > max_bytes or sniff(data) is None:
        raise ValidationFailed("材料超出大小或类型限制", type="material-rejected")
    if hashlib.sha256(data).hexdigest() != item["sha256"]:
        raise ValidationFailed("材料内容与其 SHA-256 不符", type="material-corrupt")
    write_blob(session, upload_dir, data)


def import_attachments(session: Session, case: Case, items: list[dict[str, Any]]) -> None:
    """Store the materials that arrived with a message and link the missing ones."""
    settings = settings_of(session)
    have = {(a.sha256, a.material_code, a.filename) for a in case.attachments}
    for item in items:
        name = safe_filename(item["filename"], item["content_type"])
        key = (item["sha256"], item["material_code"], name)
        if key in have or (item["sha256"], item["material_code"], item["filename"]) in have:
            continue
        _store_blob(session, Path(settings.upload_dir), item, settings.max_upload_bytes)
        case.attachments.append(
            Attachment(
                material_code=item["material_code"],
                filename=name,
                content_type=item["content_type"],
                size=int(item["size"]),
                sha256=item["sha256"],
                uploaded_by=None,
            )
        )
        have.add(key)
    session.flush()


# --- the copies -------------------------------------------------------------------------


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _event(case: Case, ev: dict[str, Any]) -> CaseEvent:
    return CaseEvent(
        id=uuid.UUID(ev["id"]),
        case_id=case.id,
        seq=int(ev["seq"]),
        action=ev["action"],
        from_state=ev["from_state"],
        to_state=ev["to_state"],
        actor_id=None,
        actor_name=ev["actor_name"],
        actor_role=ev["actor_role"],
        comment=ev["comment"],
        at=datetime.fromisoformat(ev["at"]),
    )


def create_copy(session: Session, p: dict[str, Any]) -> Case:
    """The competent node's copy of a case received on another node, from its snapshot."""
    authority = regions.authority_by_code(session, p["authority_code"])
    parent = None
    if p.get("parent_number"):
        parent = session.scalar(select(Case).where(Case.number == p["parent_number"]))
    case = Case(
        id=uuid.UUID(p["id"]),
        number=p["number"],
        matter_code=p["matter_code"],
        matter_name=p["matter_name"],
        # The applicant's and the clerk's accounts live on the receiving node.
        applicant_id=None,
        applicant_type=p["applicant_type"],
        applicant_name=p["applicant_name"],
        applicant_identifier=p["applicant_identifier"],
        applicant_phone=p["applicant_phone"],
        channel=p["channel"],
        mode=p["mode"],
        receiving_jurisdiction=p["receiving_jurisdiction"],
        receiving_city=p["receiving_city"],
        clerk_id=None,
        identity_verified=bool(p["identity_verified"]),
        competent_jurisdiction=authority.jurisdiction_code,
        competent_city=authority.city_code,
        authority_id=authority.id,
        authority_name=p["authority_name"],
        state=p["state"],
        handoff="pending",
        form_data=p["form_data"],
        consent=bool(p["consent"]),
        delivery_method=p["delivery_method"],
        delivery_address=p["delivery_address"],
        time_limit_days=int(p["time_limit_days"]),
        submitted_at=datetime.fromisoformat(p["submitted_at"]),
        parent=parent,
    )
    session.add(case)
    session.flush()
    for ev in sorted(p.get("events", []), key=lambda e: int(e["seq"])):
        history.adopt(case, _event(case, ev))
    session.flush()
    import_attachments(session, case, p.get("attachments", []))
    return case


def apply_status(session: Session, case: Case, p: dict[str, Any]) -> bool:
    """Bring this node's copy up to a status change made on the other node; False when
    the copy has it already (always so on one node, where the copy is the same row)."""
    seq, have = int(p["seq"]), case.event_seq
    if seq <= have:
        return False
    if seq > have + 1 or "event" not in p:
        raise exchange.OutOfOrder(f"办件 {case.number} 尚缺第 {have + 1} 条记录，稍后重试")
    history.adopt(case, _event(case, p["event"]))
    fields = p["case"]
    for c in _TRACKED:
        setattr(case, c, fields[c])
    case.accepted_at = _dt(fields["accepted_at"])
    case.closed_at = _dt(fields["closed_at"])
    case.deadline = date.fromisoformat(fields["deadline"]) if fields["deadline"] else None
    session.flush()
    if p.get("attachments"):
        import_attachments(session, case, p["attachments"])
    rating = p.get("rating")
    if rating and session.scalar(select(Rating).where(Rating.case_id == case.id)) is None:
        row = Rating(case_id=case.id, score=int(rating["score"]), comment=rating["comment"])
        session.add(row)
        session.flush()
        if rating_opens_rectification(row.score) and exchange.serves_here(
            session, case.competent_jurisdiction
        ):
            session.add(
                Rectification(
                    case_id=case.id,
                    authority_id=case.authority_id,
                    rating_id=row.id,
                    reason=row.comment,
                )
            )
            session.flush()
    return True


# --- 多地联办: the lead's node follows the sub-tasks -------------------------------------


def link_subtasks(session: Session, parent: Case, snapshots: list[dict[str, Any]]) -> None:
    """On the lead's node: a copy of each sub-task of `parent`, from the snapshots sent
    with the parent, linked to it (a sub-task handled on this node too is the same row,
    only linked; on one node there is nothing to do)."""
    for p in snapshots:
        sub = session.scalar(select(Case).where(Case.number == p["number"]))
        if sub is None:
            sub = create_copy(session, p)
        if sub.parent_id != parent.id:
            sub.parent = parent
    session.flush()


def lead_elsewhere(session: Session, case: Case) -> str | None:
    """The lead's jurisdiction when this node holds the parent of sub-task `case` but is
    not the lead's node, so the sub-task's steps must be sent on to it; else None."""
    parent = case.parent
    if parent is None or exchange.serves_here(session, parent.competent_jurisdiction):
        return None
    return parent.competent_jurisdiction


def to_lead(session: Session, case: Case, source: str, payload: dict[str, Any]) -> None:
    """Send a sub-task's status change on to the lead's node, if that is another node."""
    lead = lead_elsewhere(session, case)
    if lead is not None:
        exchange.send(session, MSG_STATUS, source, lead, {**payload, "to_lead": True})


def missing_copy(payload: dict[str, Any]) -> Exception:
    """What to raise when a status change finds no copy of its case here: a sub-task's
    step sent on to the lead may overtake the parent's forwarding (which brings the
    copy), so it is retried; any other is an error."""
    if payload.get("to_lead"):
        return exchange.OutOfOrder(f"办件 {payload['number']} 的主件尚未送达，稍后重试")
    return NotFound(f"办件 {payload['number']} 不存在")


def relay_payload(case: Case, received: dict[str, Any]) -> dict[str, Any]:
    """A status change applied here, to be sent on: rebuilt from this copy (materials go
    as metadata; their bytes are added again when the message leaves)."""
    extra = {"rating": received["rating"]} if received.get("rating") else None
    return status_payload(case, case.events[-1], extra)


def decides_lead_here(session: Session, case: Case) -> bool:
    """Whether a sub-task's status just applied here may decide its parent: this is the
    lead's node and the sub-task is decided."""
    parent = case.parent
    return (
        parent is not None
        and exchange.serves_here(session, parent.competent_jurisdiction)
        and CaseState(case.state) in DECIDED
    )
