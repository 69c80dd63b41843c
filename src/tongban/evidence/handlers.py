"""Messages of the evidence exchange and the handlers that apply them at the receiver.

Every handler works from its payload alone — on a federation of several nodes the
requester's rows (case, officer, request) do not exist on the provider node — and is
idempotent: a message applied twice changes nothing the second time.

    evidence.consent_recorded  receiving node  -> competent node   consent snapshot
    evidence.requested         competent node  -> provider node    request + consent
    evidence.answered          provider node   -> competent node   minimised data
    evidence.refused           provider node   -> competent node   reason code + text
    evidence.access_logged     provider node   -> subject's log holders
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.catalog import service as catalog
from tongban.db import utcnow
from tongban.errors import NotFound
from tongban.evidence import domain, messages, registers
from tongban.evidence.datause import announce_use
from tongban.evidence.models import Consent, DataAccess, EvidenceRequest
from tongban.exchange import service as exchange
from tongban.regions import service as regions

MSG_CONSENT = "evidence.consent_recorded"
MSG_WITHDRAWN = "evidence.consent_withdrawn"
MSG_REQUESTED = "evidence.requested"
MSG_ANSWERED = "evidence.answered"
MSG_REFUSED = "evidence.refused"
MSG_LOGGED = "evidence.access_logged"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- consent travels with the case -----------------------------------------------------


def consent_payload(c: Consent) -> dict[str, Any]:
    return {
        "case_number": c.case_number,
        "case_id": str(c.case_id) if c.case_id else None,
        "subject": c.subject_identifier,
        "subject_name": c.subject_name,
        "scopes": list(c.scopes),
        "given_at": c.given_at.isoformat(),
        "channel": c.channel,
        "recorded_by": c.recorded_by,
    }


@exchange.handler(MSG_CONSENT, schema=messages.ConsentIn, authorise=messages.authorise_consent)
def on_consent_recorded(session: Session, payload: dict[str, Any], _msg: Any) -> None:
    """The competent node keeps a copy of the consent given where the case was received
    (on one node it is the same row)."""
    if session.scalar(select(Consent).where(Consent.case_number == payload["case_number"])):
        return
    session.add(
        Consent(
            case_number=payload["case_number"],
            case_id=uuid.UUID(payload["case_id"]) if payload.get("case_id") else None,
            subject_identifier=payload["subject"],
            subject_name=payload["subject_name"],
            scopes=list(payload["scopes"]),
            given_at=_when(payload["given_at"]),
            channel=payload["channel"],
            recorded_by=payload["recorded_by"],
        )
    )
    session.flush()


def apply_withdrawal(c: Consent, kind: str, at: str, by: str) -> bool:
    """Record that consent for `kind` is withdrawn (idempotent: False if it already was)."""
    if kind not in c.scopes or kind in c.withdrawn():
        return False
    c.withdrawals = [*(c.withdrawals or []), {"kind": kind, "at": at, "by": by}]
    return True


@exchange.handler(
    MSG_WITHDRAWN, schema=messages.ConsentWithdrawnIn, authorise=messages.authorise_withdrawn
)
def on_consent_withdrawn(session: Session, payload: dict[str, Any], _msg: Any) -> None:
    """The competent node's copy of the consent follows the applicant's withdrawal."""
    c = session.scalar(select(Consent).where(Consent.case_number == payload["case_number"]))
    if c is None or c.subject_identifier != payload["subject"]:
        return
    apply_withdrawal(c, payload["kind"], payload["at"], payload["by"])
    session.flush()


# --- the provider decides -----------------------------------------------------------------


def _requester_type(session: Session, authority_code: str, source: str) -> str | None:
    """The requesting authority's type from this node's own reference data — never from
    the payload — provided it belongs to the jurisdiction the message came from."""
    try:
        authority = regions.authority_by_code(session, authority_code)
    except NotFound:
        return None
    if source and authority.jurisdiction_code != source:
        return None
    return authority.type


def _matter_type(session: Session, matter_code: str) -> str | None:
    try:
        return str(catalog.get_matter(session, matter_code).authority_type)
    except NotFound:
        return None


def log_holders(payload: dict[str, Any], provider: str) -> list[str]:
    """Where the subject's log must be complete besides the provider: the jurisdiction
    encoded in their identifier, and the one where the case was received (an online
    applicant's own node)."""
    subject = payload["subject"]
    out = []
    for j in (
        domain.home_jurisdiction(subject["identifier"], subject["type"]),
        payload.get("receiving_jurisdiction"),
    ):
        if j and j != provider and j not in out:
            out.append(j)
    return out


def access_payload(a: DataAccess) -> dict[str, Any]:
    return {
        "request_id": str(a.request_id),
        "subject": a.subject_identifier,
        "subject_name": a.subject_name,
        "requester_authority_code": a.requester_authority_code,
        "requester_authority_name": a.requester_authority_name,
        "requester_jurisdiction": a.requester_jurisdiction,
        "officer_name": a.officer_name,
        "case_number": a.case_number,
        "matter_name": a.matter_name,
        "kind": a.kind,
        "purpose": a.purpose,
        "provider_jurisdiction": a.provider_jurisdiction,
        "outcome": a.outcome,
        "reason_code": a.reason_code,
        "reason": a.reason,
        "fields": list(a.fields),
        "requested_at": a.requested_at.isoformat(),
        "at": a.at.isoformat(),
    }


@dataclass(frozen=True)
class Decision:
    """What the provider decided on a request: the access it logged, and the minimised
    data (answered) or the refusal's code and Chinese text."""

    access: DataAccess
    data: dict[str, Any] | None

    @property
    def answered(self) -> bool:
        return self.access.outcome == domain.Status.ANSWERED.value


def decide(session: Session, payload: dict[str, Any], provider: str, source: str) -> Decision:
    """The provider's decision on a request (a `messages.Requested` payload), whether it
    came as a message or as a synchronous lookup: check purpose, consent and the
    requester's authority, log the access (answered or refused) and tell the subject's
    log holders. Decided once per request id: asked again (a message redelivered, or
    sent after a lookup whose answer was lost), the logged decision is given again."""
    request_id = uuid.UUID(payload["request_id"])
    cat = domain.catalogue()
    found = session.scalar(select(DataAccess).where(DataAccess.request_id == request_id))
    if found is not None:
        again: dict[str, Any] | None = None
        if found.outcome == domain.Status.ANSWERED.value:
            record = registers.lookup(
                session, found.kind, found.provider_jurisdiction, found.subject_identifier
            )
            again = domain.minimise(cat, found.kind, found.purpose, record) if record else {}
        return Decision(found, again)
    subject = payload["subject"]
    requester = payload["requester"]
    requested_at = _when(payload["requested_at"])
    ask = domain.Ask(
        kind=payload["kind"],
        purpose=payload["purpose"],
        subject=subject["identifier"],
        subject_type=subject["type"],
        case_number=payload["case_number"],
        matter_code=payload["matter_code"],
        matter_authority_type=_matter_type(session, payload["matter_code"]),
        requester_type=_requester_type(session, requester["authority_code"], source),
        requested_at=requested_at,
        case_state=payload.get("case_state"),
    )
    refusal = domain.decide(cat, ask, domain.ConsentSnapshot.from_payload(payload.get("consent")))
    data: dict[str, Any] | None = None
    if refusal is None:
        record = registers.lookup(session, ask.kind, provider, ask.subject)
        if record is None:
            refusal = domain.no_record(cat, ask.kind)
        else:
            data = domain.minimise(cat, ask.kind, ask.purpose, record)
    access = DataAccess(
        request_id=request_id,
        subject_identifier=ask.subject,
        subject_name=subject.get("name", ""),
        requester_authority_code=requester["authority_code"],
        requester_authority_name=requester["authority_name"],
        requester_jurisdiction=source,
        officer_name=requester.get("officer_name", ""),
        case_number=ask.case_number,
        matter_name=payload.get("matter_name", ""),
        kind=ask.kind,
        purpose=ask.purpose,
        provider_jurisdiction=provider,
        outcome=(domain.Status.REFUSED if refusal else domain.Status.ANSWERED).value,
        reason_code=refusal.reason.value if refusal else None,
        reason=refusal.text if refusal else None,
        fields=sorted(data) if data else [],
        requested_at=requested_at,
        at=utcnow(),
        source="provider",
    )
    session.add(access)
    session.flush()
    for holder in log_holders(payload, provider):
        exchange.send(session, MSG_LOGGED, provider, holder, access_payload(access))
    return Decision(access, data)


@exchange.handler(MSG_REQUESTED, schema=messages.Requested, authorise=messages.authorise_requested)
def on_requested(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """The provider decides (`decide`) and answers the requester by message. A request
    decided before is answered again: its requester may have asked by a synchronous
    lookup whose answer never reached it, and then sent this message (answering twice
    is harmless: the requester keeps the first answer)."""
    provider = str(getattr(msg, "target_jurisdiction", "") or payload["provider_jurisdiction"])
    source = str(getattr(msg, "source_jurisdiction", "") or payload["requester"]["jurisdiction"])
    d = decide(session, payload, provider, source)
    a = d.access
    if not d.answered:
        exchange.send(
            session,
            MSG_REFUSED,
            provider,
            source,
            {
                "request_id": str(a.request_id),
                "reason_code": a.reason_code,
                "reason": a.reason,
                "at": a.at.isoformat(),
            },
        )
    else:
        exchange.send(
            session,
            MSG_ANSWERED,
            provider,
            source,
            {"request_id": str(a.request_id), "data": d.data, "at": a.at.isoformat()},
        )


# --- the requester stores the answer ------------------------------------------------------


def _pending_request(session: Session, payload: dict[str, Any]) -> EvidenceRequest | None:
    req = session.get(EvidenceRequest, uuid.UUID(payload["request_id"]))
    if req is None:
        raise NotFound(f"evidence request {payload['request_id']} is unknown here")
    return req if req.status == domain.Status.PENDING else None


@exchange.handler(MSG_ANSWERED, schema=messages.Answered, authorise=messages.authorise_answered)
def on_answered(session: Session, payload: dict[str, Any], _msg: Any) -> None:
    """The requester keeps the minimised data on its request."""
    req = _pending_request(session, payload)
    if req is None:
        return
    req.status = domain.Status.ANSWERED.value
    req.data = payload["data"]
    req.answered_at = _when(payload["at"])
    session.flush()


@exchange.handler(MSG_REFUSED, schema=messages.RefusedAnswer, authorise=messages.authorise_refused)
def on_refused(session: Session, payload: dict[str, Any], _msg: Any) -> None:
    """The requester learns why it was refused."""
    req = _pending_request(session, payload)
    if req is None:
        return
    req.status = domain.Status.REFUSED.value
    req.reason_code = payload["reason_code"]
    req.reason = payload["reason"]
    req.answered_at = _when(payload["at"])
    session.flush()


# --- the subject's log, complete across nodes ------------------------------------------


@exchange.handler(MSG_LOGGED, schema=messages.AccessLogged, authorise=messages.authorise_logged)
def on_access_logged(session: Session, payload: dict[str, Any], _msg: Any) -> None:
    """A log holder keeps a copy of an access decided elsewhere (once)."""
    request_id = uuid.UUID(payload["request_id"])
    if session.scalar(select(DataAccess.id).where(DataAccess.request_id == request_id)):
        return
    access = DataAccess(
        request_id=request_id,
        subject_identifier=payload["subject"],
        subject_name=payload["subject_name"],
        requester_authority_code=payload["requester_authority_code"],
        requester_authority_name=payload["requester_authority_name"],
        requester_jurisdiction=payload["requester_jurisdiction"],
        officer_name=payload["officer_name"],
        case_number=payload["case_number"],
        matter_name=payload["matter_name"],
        kind=payload["kind"],
        purpose=payload["purpose"],
        provider_jurisdiction=payload["provider_jurisdiction"],
        outcome=payload["outcome"],
        reason_code=payload.get("reason_code"),
        reason=payload.get("reason"),
        fields=list(payload.get("fields") or []),
        requested_at=_when(payload["requested_at"]),
        at=_when(payload["at"]),
        source="notice",
    )
    session.add(access)
    session.flush()
    _announce(session, access)


def _announce(session: Session, access: DataAccess) -> None:
    """The person whose data it is hears of the use."""
    announce_use(session, access)
