"""The evidence messages as a receiving node accepts them (see handlers.py): typed
payloads, and who may send them.

- `evidence.consent_recorded` comes from the node that received the case (the city of
  the case number is in a jurisdiction it serves);
- `evidence.requested` from the node serving the requesting (competent) jurisdiction,
  which is the message's source, to the provider named in it;
- `evidence.answered` / `evidence.refused` from the node serving the provider of the
  request they answer;
- `evidence.access_logged` from the node serving the provider that logged the access.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.errors import NotFound
from tongban.evidence.models import Consent, EvidenceRequest
from tongban.exchange import schema as s
from tongban.exchange import service as exchange
from tongban.regions import service as regions

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=18)]
Name80 = Annotated[str, StringConstraints(max_length=80)]
Code40 = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Code60 = Annotated[str, StringConstraints(min_length=1, max_length=60)]


class ConsentIn(s.Payload):
    case_number: s.CaseNumber
    case_id: s.Uuid | None
    subject: Identifier
    subject_name: Name80
    scopes: Annotated[list[Code40], Field(max_length=50)]
    given_at: s.Instant
    channel: Annotated[str, StringConstraints(max_length=10)]
    recorded_by: Name80


class ConsentWithdrawnIn(s.Payload):
    case_number: s.CaseNumber
    subject: Identifier
    kind: Code40
    at: s.Instant
    by: Name80


class ConsentSnapshotIn(s.Payload):
    """The consent as the requester holds it (domain.ConsentSnapshot.as_payload)."""

    case_number: s.CaseNumber
    subject: Identifier
    scopes: Annotated[list[Code40], Field(max_length=50)]
    given_at: s.Instant
    channel: Annotated[str, StringConstraints(max_length=10)]


class SubjectIn(s.Payload):
    identifier: Identifier
    type: Literal["resident", "enterprise"]
    name: Name80


class RequesterIn(s.Payload):
    authority_code: Code60
    authority_name: Name80
    jurisdiction: s.RegionCode
    officer_name: Name80


class Requested(s.Payload):
    request_id: s.Uuid
    case_number: s.CaseNumber
    matter_code: s.Code
    matter_name: Annotated[str, StringConstraints(max_length=120)]
    receiving_jurisdiction: s.RegionCode | None = None
    kind: Code40
    purpose: Code40
    provider_jurisdiction: s.RegionCode
    subject: SubjectIn
    requester: RequesterIn
    requested_at: s.Instant
    consent: ConsentSnapshotIn | None
    #: The case's state when asked (the provider refuses outside 受理后、办结前); absent
    #: from a peer that predates the check.
    case_state: Code40 | None = None


class Answered(s.Payload):
    request_id: s.Uuid
    data: Annotated[dict[str, Any], Field(max_length=200)] | None
    at: s.Instant


class RefusedAnswer(s.Payload):
    request_id: s.Uuid
    reason_code: Code40
    reason: s.ShortText
    at: s.Instant


class AccessLogged(s.Payload):
    request_id: s.Uuid
    subject: Identifier
    subject_name: Name80
    requester_authority_code: Code60
    requester_authority_name: Name80
    requester_jurisdiction: s.RegionCode
    officer_name: Name80
    case_number: s.CaseNumber
    matter_name: Annotated[str, StringConstraints(max_length=120)]
    kind: Code40
    purpose: Code40
    provider_jurisdiction: s.RegionCode
    outcome: Literal["answered", "refused"]
    reason_code: Code40 | None = None
    reason: s.ShortText | None = None
    fields: Annotated[list[Code40], Field(max_length=200)] = []
    requested_at: s.Instant
    at: s.Instant


def _refuse(detail: str) -> exchange.Refused:
    return exchange.Refused("not-allowed", detail)


def _from_receiving_node(session: Session, case_number: str, sender: exchange.Sender) -> None:
    try:
        city = regions.get_city(session, case_number[:6])
    except NotFound:
        raise _refuse(f"办件 {case_number} 的受理城市不存在") from None
    sender.require(city.jurisdiction_code, f"办件 {case_number} 的受理地")


def authorise_consent(session: Session, p: ConsentIn, sender: exchange.Sender) -> None:
    """The node that received the case (its number starts with the receiving city)."""
    _from_receiving_node(session, p.case_number, sender)


def authorise_withdrawn(session: Session, p: ConsentWithdrawnIn, sender: exchange.Sender) -> None:
    """From the node that received the case (it holds the original) to the competent
    node's copy; or back, from the node serving the case's competent jurisdiction as this
    node recorded it — the applicant may withdraw on either. Nobody else: the handler
    then applies it only for the consent's own subject."""
    c = session.scalar(select(Consent).where(Consent.case_number == p.case_number))
    competent = case_competent_jurisdiction(session, c.case_id) if c and c.case_id else None
    if competent and sender.serves(competent) and competent == sender.source_jurisdiction:
        return
    _from_receiving_node(session, p.case_number, sender)


def case_competent_jurisdiction(session: Session, case_id: Any) -> str | None:
    """The competent jurisdiction of a case this node holds (None: not held here)."""
    try:
        return cases.case_by_id(session, case_id).competent_jurisdiction
    except NotFound:
        return None


def authorise_requested(session: Session, p: Requested, sender: exchange.Sender) -> None:
    """The requester's node, for the provider this message goes to."""
    sender.require(p.requester.jurisdiction, "请求部门所在辖区")
    if p.requester.jurisdiction != sender.source_jurisdiction:
        raise _refuse("请求部门须属于消息的来源辖区")
    if p.provider_jurisdiction != sender.target_jurisdiction:
        raise _refuse("提供方须为消息的目标辖区")


def _authorise_answer(session: Session, request_id: Any, sender: exchange.Sender) -> None:
    req = session.get(EvidenceRequest, request_id)
    if req is None:
        return  # unknown here: the handler says so (nothing is written)
    sender.require(req.provider_jurisdiction, "该调取请求的提供方")


def authorise_answered(session: Session, p: Answered, sender: exchange.Sender) -> None:
    """Only the provider asked answers."""
    _authorise_answer(session, p.request_id, sender)


def authorise_refused(session: Session, p: RefusedAnswer, sender: exchange.Sender) -> None:
    """Only the provider asked refuses."""
    _authorise_answer(session, p.request_id, sender)


def authorise_logged(session: Session, p: AccessLogged, sender: exchange.Sender) -> None:
    """Only the provider that decided logs the access."""
    sender.require(p.provider_jurisdiction, "数据提供方")
    if p.provider_jurisdiction != sender.source_jurisdiction:
        raise _refuse("数据提供方须为消息的来源辖区")
