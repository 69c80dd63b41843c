"""A case on two nodes: the receiving node (where the applicant's account lives) and the
competent node (where the authority handles it) each hold a copy, kept in step by the
kernel's replication (`tongban.kernel.replication`): ``CASES`` below declares what only
cases know, the kernel does the rest the same way as for every record with copies.

- `case.forwarded` is the snapshot (applicant, form, events, materials) from which the
  competent node creates its copy, with the same id and number; the receiving node's
  node shares it (`history.forward`);
- `case.status_changed` is a change: one new event with its sequence number and the
  case fields it moved. A copy appends it when it is the next one, ignores it when it
  has it already, and asks for a later delivery (OutOfOrder -> retried) when an earlier
  one is still missing.

Every message goes through the outbox, also when the other copy is on this node: there
both copies are the same row, and the local delivery finds it has nothing to do.

多地联办 across nodes: the lead authority's node (the parent's competent node) also holds
a copy of each sub-task, created from the sub-tasks' snapshots carried by the parent's
`case.forwarded`, and linked to its parent there. Every step of a sub-task reaches it:
the node that holds the parent (the receiving node, which sees every step of the
sub-task) sends it on with `case.status_changed` marked `to_lead`. So the lead's approve
guard and the automatic decision of the whole case (`joint_outcome`) work on the lead's
node, and that decision flows back to the receiving node like any other.

Materials travel inside the message, base64, added only when the message leaves the
node over HTTP (`exchange.outgoing`), and are stored by content hash on arrival after
their SHA-256 is checked.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.calendar.service import local_date
from tongban.cases import messages
from tongban.cases.attachments import blob_path, safe_filename, sniff, write_blob
from tongban.cases.domain import (
    DECIDED,
    Action,
    CaseState,
    correction_stage,
    rating_opens_rectification,
)
from tongban.cases.models import (
    Attachment,
    Case,
    CaseCorrection,
    CaseDocument,
    CaseEvent,
    Rating,
    Rectification,
)
from tongban.cases.presented import VerifiedLicence, check_verified, presented_rows
from tongban.catalog import service as catalog
from tongban.config import Settings
from tongban.errors import NotFound, ValidationFailed
from tongban.exchange import service as exchange
from tongban.kernel import replication
from tongban.kernel.node import settings_of
from tongban.regions import service as regions

#: Case columns a status change may move, copied as they are on the acting node.
_TRACKED = ("state", "handoff", "result_text", "form_data", "deadline_flag", "clock_paused_days")


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- what travels ----------------------------------------------------------------------


def attachment_dicts(case: Case) -> list[dict[str, Any]]:
    """The materials' metadata (their bytes are added when a message leaves over HTTP)."""
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


def presented_dicts(case: Case) -> list[dict[str, Any]]:
    """The licences presented and verified instead of materials (免提交), as they travel."""
    return [
        {
            "material_code": p.material_code,
            "type_code": p.type_code,
            "type_name": p.type_name,
            "licence_id": p.licence_id,
            "issuer": p.issuer,
            "verified_by": p.verified_by,
            "verified_at": p.verified_at.isoformat(),
            "presentation_sha256": p.presentation_sha256,
            "result": p.result,
        }
        for p in case.presented_licences
    ]


def import_presented(session: Session, case: Case, items: Iterable[Any]) -> None:
    """A copy's presented licences, checked again here as a peer's claim (the material is
    one of the matter's that accepts that licence type, verified valid …): a bad one
    refuses the message."""
    verified = []
    for i in items:
        f = dict(i) if isinstance(i, Mapping) else i.model_dump()  # a dict or its schema
        f["verified_at"] = _as_dt(f["verified_at"])
        verified.append(VerifiedLicence(**f))
    if not verified:
        return
    matter = catalog.matter_ref(session, case.matter_code)
    have = {p.material_code for p in case.presented_licences}
    for row in presented_rows(check_verified(matter, verified)):
        if row.material_code not in have:
            case.presented_licences.append(row)


def _as_dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def snapshot(session: Session, case: Case) -> dict[str, Any]:
    """What the competent node needs to make its own copy of `case` (messages.Forwarded;
    the kernel adds the events), with its sub-tasks' snapshots for the lead's node."""
    payload: dict[str, Any] = {
        "number": case.number,
        "id": str(case.id),
        "matter_code": case.matter_code,
        "matter_name": case.matter_name,
        "applicant_id": str(case.applicant_id) if case.applicant_id else None,
        "applicant_type": case.applicant_type,
        "applicant_name": case.applicant_name,
        "applicant_identifier": case.applicant_identifier,
        "applicant_phone": case.applicant_phone,
        "channel": case.channel,
        "mode": case.mode,
        "receiving_jurisdiction": case.receiving_jurisdiction,
        "receiving_city": case.receiving_city,
        "clerk_id": str(case.clerk_id) if case.clerk_id else None,
        "identity_verified": case.identity_verified,
        "competent_jurisdiction": case.competent_jurisdiction,
        "competent_city": case.competent_city,
        "authority_id": str(case.authority_id),
        "authority_code": regions.authority_ref(session, case.authority_id).code,
        "authority_name": case.authority_name,
        "state": case.state,
        "form_data": case.form_data,
        "consent": case.consent,
        "delivery_method": case.delivery_method,
        "delivery_address": case.delivery_address,
        "time_limit_days": case.time_limit_days,
        "submitted_at": case.submitted_at.isoformat(),
        "parent_number": case.parent.number if case.parent else None,
        "attachments": attachment_dicts(case),
    }
    if case.presented_licences:  # 免提交 with licences verified at a (virtual) window
        payload["presented_licences"] = presented_dicts(case)
    if case.subtasks:  # 多地联办: the lead's node keeps a copy of each sub-task
        payload["subtasks"] = [CASES.snapshot_payload(session, s) for s in case.subtasks]
    return payload


def change(session: Session, case: Case, ev: CaseEvent) -> dict[str, Any]:
    """What a `case.status_changed` carries besides the event and its number: the case
    fields the step moved (messages.StatusChanged). The state is the event's: a case that
    took two steps in one transaction sends both, each consistent with its event; the
    other fields are as the transaction left them, so the copy ends where the case is."""
    payload: dict[str, Any] = {
        "number": case.number,
        "state": ev.to_state,
        "action": ev.action,
        "comment": ev.comment,
        "case": {
            **{c: getattr(case, c) for c in _TRACKED},
            "state": ev.to_state,
            "accepted_at": _iso(case.accepted_at),
            "deadline": _iso(case.deadline),
            "closed_at": _iso(case.closed_at),
            "clock_paused_since": _iso(case.clock_paused_since),
        },
    }
    if ev.action == Action.RESUBMIT:
        payload["attachments"] = attachment_dicts(case)
    if ev.action == Action.REQUEST_CORRECTION and ev.from_state is not None:
        stage = correction_stage(CaseState(ev.from_state)).value
        notice = next((c for c in case.corrections if c.stage == stage), None)
        if notice is not None:
            payload["correction"] = correction_dict(notice)
    if ev.action in (Action.REFUSE, Action.ISSUE_RESULT) and case.documents:
        payload["documents"] = [document_dict(d) for d in case.documents]
    return payload


def correction_dict(notice: CaseCorrection) -> dict[str, Any]:
    """A correction notice as it travels (messages.CorrectionIn)."""
    return {
        "stage": notice.stage,
        "reason": notice.reason,
        "items": notice.items,
        "deadline_days": notice.deadline_days,
        "deadline": notice.deadline.isoformat(),
        "requested_at": notice.requested_at.isoformat(),
        "requested_by": notice.requested_by,
    }


def document_dict(doc: CaseDocument) -> dict[str, Any]:
    """A result document's record as it travels (its bytes are added over HTTP)."""
    return {
        "kind": doc.kind,
        "title": doc.title,
        "token": doc.token,
        "sha256": doc.sha256,
        "size": doc.size,
        "issued_at": doc.issued_at.isoformat(),
    }


# --- materials -------------------------------------------------------------------------


def _add_contents(session: Session, payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    if payload.get("documents"):
        docs = []
        for doc in payload["documents"]:
            data = blob_path(Path(settings.upload_dir), doc["sha256"]).read_bytes()
            docs.append({**doc, "content_b64": base64.b64encode(data).decode("ascii")})
        payload = {**payload, "documents": docs}
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


def import_attachments(
    session: Session, case: Case, items: Iterable[dict[str, Any]], *, flush: bool = True
) -> None:
    """Store the materials that arrived with a message and link the missing ones
    (flushed, unless not `flush`)."""
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
    if flush:
        session.flush()


# --- the copies -------------------------------------------------------------------------


def find(session: Session, p: Mapping[str, Any]) -> Case | None:
    """This node's copy of the case a payload is about (on one node, the case itself)."""
    return messages.case_by_number(session, str(p["number"]))


def prefetch(session: Session, payloads: Sequence[Mapping[str, Any]]) -> None:
    """The cases a batch of `case.forwarded` is about (and their sub-tasks), read in one
    query for `find` and the sender's check (payloads not checked yet: odd ones skipped)."""
    numbers: set[str] = set()
    for p in payloads:
        for snap in (p, *(p.get("subtasks") or ())):
            if isinstance(snap, Mapping) and isinstance(snap.get("number"), str):
                numbers.add(snap["number"])
    if not numbers:
        return
    held = {c.number: c for c in session.scalars(select(Case).where(Case.number.in_(numbers)))}
    for number in numbers:
        replication.remember(session, ("case", number), held.get(number))


def create_copy(session: Session, p: Mapping[str, Any]) -> Case:
    """The competent node's copy of a case received on another node, from its snapshot
    (the kernel adopts its events), left pending: written with them at the next flush,
    without a read (its collections start empty)."""
    authority = messages.authority_by_code(session, p["authority_code"])
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
    import_attachments(session, case, p.get("attachments") or (), flush=False)
    import_presented(session, case, p.get("presented_licences") or ())
    return case


def follow(session: Session, case: Case, p: Mapping[str, Any]) -> None:
    """The copy takes the fields a step moved on the other node (its event is adopted
    already): the tracked columns, a resubmission's materials, a rating with the
    差评整改 item it opens on the competent node."""
    fields = p["case"]
    for c in _TRACKED:
        if c in fields:  # a field a sender of an earlier release does not send stays as held
            setattr(case, c, fields[c])
    case.accepted_at = _dt(fields["accepted_at"])
    case.closed_at = _dt(fields["closed_at"])
    case.deadline = date.fromisoformat(fields["deadline"]) if fields["deadline"] else None
    session.flush()
    case.clock_paused_since = (
        date.fromisoformat(fields["clock_paused_since"])
        if fields.get("clock_paused_since")
        else None
    )
    if p.get("attachments"):
        import_attachments(session, case, p["attachments"])
    if p.get("correction"):
        _follow_correction(case, p["correction"])
    if p["action"] == Action.RESUBMIT.value:
        for notice in case.corrections:
            if notice.status == "open":
                notice.status, notice.answered_at = "answered", _dt(p["event"]["at"])
    if p["action"] == Action.WITHDRAW.value:
        for notice in case.corrections:
            if notice.status == "open":
                notice.status = "lapsed"
    if p["action"] == "correction_reminder":
        for notice in case.corrections:
            if notice.status == "open":
                at = _dt(p["event"]["at"])
                notice.reminded_on = local_date(at) if at else None
    for doc in p.get("documents") or ():
        _import_document(session, case, doc)
    session.flush()
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


def _follow_correction(case: Case, c: Mapping[str, Any]) -> None:
    if any(n.stage == c["stage"] for n in case.corrections):
        return  # this copy issued it (one node) or has it already
    case.corrections.append(
        CaseCorrection(
            stage=c["stage"],
            reason=c["reason"],
            items=[dict(i) for i in c["items"]],
            deadline_days=int(c["deadline_days"]),
            deadline=date.fromisoformat(c["deadline"]),
            requested_at=datetime.fromisoformat(c["requested_at"]),
            requested_by=c["requested_by"],
        )
    )


def _import_document(session: Session, case: Case, doc: Mapping[str, Any]) -> None:
    """Store a result document that arrived with a step (its hash checked) and record it
    under the token its QR code prints, so it verifies on this node too."""
    if any(d.token == doc["token"] for d in case.documents):
        return
    settings = settings_of(session)
    _store_blob(session, Path(settings.upload_dir), dict(doc), settings.max_upload_bytes)
    case.documents.append(
        CaseDocument(
            kind=doc["kind"],
            title=doc["title"],
            token=doc["token"],
            sha256=doc["sha256"],
            size=int(doc["size"]),
            issued_at=datetime.fromisoformat(doc["issued_at"]),
        )
    )


def missing_copy(payload: Mapping[str, Any]) -> Exception:
    """What to raise when a status change finds no copy of its case here: a sub-task's
    step sent on to the lead may overtake the parent's forwarding (which brings the
    copy), so it is retried; any other is an error."""
    if payload.get("to_lead"):
        return exchange.OutOfOrder(f"办件 {payload['number']} 的主件尚未送达，稍后重试")
    return NotFound(f"办件 {payload['number']} 不存在")


CASES: replication.Copies[Case] = replication.Copies(
    noun="办件",
    snapshot_type="case.forwarded",
    snapshot_schema=messages.Forwarded,
    change_type="case.status_changed",
    change_schema=messages.StatusChanged,
    find=find,
    create=create_copy,
    follow=follow,
    snapshot=snapshot,
    change=change,
    shared_by=lambda p: p.receiving_jurisdiction,
    changed_by=messages.changed_by,
    label=lambda p: str(p["number"]),
    check_snapshot=messages.check_forwarded,
    check_change=messages.check_status,
    missing=missing_copy,
    flush_new_copy=False,  # cases.service.on_forwarded records the receipt, then flushes
    prefetch=prefetch,
)

exchange.outgoing(CASES.snapshot_type)(_add_contents)
exchange.outgoing(CASES.change_type)(_add_contents)


# --- sending ---------------------------------------------------------------------------


def forward(session: Session, case: Case) -> None:
    """Hand `case` over to its competent jurisdiction: its snapshot (and its sub-tasks'),
    sent when the transaction commits."""
    replication.share(
        session, CASES, case, None, case.receiving_jurisdiction, [case.competent_jurisdiction]
    )


def share_step(
    session: Session,
    case: Case,
    ev: CaseEvent,
    source: str,
    target: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Send step `ev` of `case`, taken on the `source` side, to the copy on the `target`
    side (`extra` rides along: a rating) and, for a sub-task, on to the lead."""
    replication.share(session, CASES, case, ev, source, [target], extra)
    to_lead(session, case, ev, extra, reached=(source, target))


def to_lead(
    session: Session,
    case: Case,
    ev: CaseEvent,
    extra: Mapping[str, Any] | None = None,
    reached: Iterable[str] = (),
) -> None:
    """多地联办: send sub-task `case`'s step `ev` on to the lead's copy, from the receiving
    jurisdiction, when this node holds the parent (the receiving node does, and the
    lead's: there it is a no-op) and the lead is not one of the jurisdictions the step
    `reached` already."""
    parent = case.parent
    if parent is None:
        return
    lead = parent.competent_jurisdiction
    if lead == case.receiving_jurisdiction or lead in set(reached):
        return
    replication.share(
        session,
        CASES,
        case,
        ev,
        case.receiving_jurisdiction,
        [lead],
        {**(extra or {}), "to_lead": True},
    )


def event_of(case: Case, seq: int) -> CaseEvent:
    """Event number `seq` of `case` (one this node holds)."""
    return next(e for e in reversed(case.events) if e.seq == seq)


def decides_lead_here(session: Session, case: Case) -> bool:
    """Whether a sub-task's status just applied here may decide its parent: this is the
    lead's node and the sub-task is decided."""
    parent = case.parent
    return (
        parent is not None
        and exchange.serves_here(session, parent.competent_jurisdiction)
        and CaseState(case.state) in DECIDED
    )


# --- 多地联办: the lead's node follows the sub-tasks -------------------------------------


def link_subtasks(session: Session, parent: Case, snapshots: Iterable[Mapping[str, Any]]) -> None:
    """On the lead's node: a copy of each sub-task of `parent`, from the snapshots sent
    with the parent, linked to it (a sub-task handled on this node too is the same row,
    only linked; on one node there is nothing to do)."""
    for p in snapshots:
        sub, _created = CASES.receive_snapshot(session, p)
        if sub.parent_id != parent.id:
            sub.parent = parent
    session.flush()
