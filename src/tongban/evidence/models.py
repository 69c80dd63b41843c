"""ORM tables of this context.

Which node holds which rows (one node per jurisdiction in production):
- `evidence_register_record`: the provider's registers — the data that stays home;
- `evidence_consent`: where the case was received, and (by message) where it is handled;
- `evidence_request`: the requesting (competent) node, with the answer once it arrives;
- `evidence_data_access`: the provider node, and a copy on every node that keeps the
  subject's log (their registered home and the node where the case was received).

No foreign key points at another context's rows that may live on another node: cases
are referred to by number, authorities by code.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, new_id, utcnow


class RegisterRecord(Base):
    """One record of a jurisdiction's register (户籍, 社保, 证照) about one subject."""

    __tablename__ = "evidence_register_record"
    __table_args__ = (UniqueConstraint("kind", "jurisdiction_code", "subject_identifier"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(40))
    jurisdiction_code: Mapped[str] = mapped_column(String(6))
    #: ID number or unified social credit code.
    subject_identifier: Mapped[str] = mapped_column(String(18), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Consent(Base):
    """The applicant's consent, given at submission, to fetch evidence of the listed
    kinds for one case."""

    __tablename__ = "evidence_consent"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    #: The case's id where it was received (no foreign key: the row may be a copy).
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subject_identifier: Mapped[str] = mapped_column(String(18), index=True)
    subject_name: Mapped[str] = mapped_column(String(80))
    #: Evidence kinds covered.
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: online (the applicant ticked it) | window (the clerk recorded the applicant's word)
    channel: Mapped[str] = mapped_column(String(10))
    recorded_by: Mapped[str] = mapped_column(String(80))
    #: Kinds the applicant withdrew consent for later: [{"kind", "at" (ISO), "by"}].
    #: Not retroactive: requests made before stay answered and logged.
    withdrawals: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, default=list)

    def withdrawn(self) -> dict[str, str]:
        """Withdrawn kind → when (ISO)."""
        return {w["kind"]: w["at"] for w in self.withdrawals or []}

    def active_scopes(self) -> list[str]:
        """The kinds consent still covers."""
        gone = self.withdrawn()
        return [k for k in self.scopes if k not in gone]


class EvidenceRequest(Base):
    """An officer's request for evidence held by another jurisdiction, for one case."""

    __tablename__ = "evidence_request"
    __table_args__ = (Index("ix_evidence_request_case_kind", "case_id", "kind"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_case.id"))
    case_number: Mapped[str] = mapped_column(String(32))
    subject_identifier: Mapped[str] = mapped_column(String(18))
    kind: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(40))
    provider_jurisdiction: Mapped[str] = mapped_column(String(6))
    requester_authority_code: Mapped[str] = mapped_column(String(60))
    requester_authority_name: Mapped[str] = mapped_column(String(80))
    officer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    officer_name: Mapped[str] = mapped_column(String(80))
    #: The consent as it was sent (a snapshot), or None when there was none.
    consent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: pending | answered | refused
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    #: The minimised data returned by the provider.
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DataAccess(Base):
    """One use of a subject's data, as the resident sees it in 我的数据使用记录: who,
    when, what, for which case, and the outcome. Keyed by the request, so a redelivered
    message or a second notice never logs twice."""

    __tablename__ = "evidence_data_access"
    __audit_kind__ = "evidence.access"
    __audit_subject__ = ("evidence-request", "request_id")
    __audit_fields__ = (
        "requester_authority_code",
        "requester_jurisdiction",
        "provider_jurisdiction",
        "case_number",
        "kind",
        "purpose",
        "outcome",
        "reason_code",
        "fields",
        "requested_at",
        "at",
        "source",
    )
    __audit_digest__ = ("subject_identifier",)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    subject_identifier: Mapped[str] = mapped_column(String(18), index=True)
    subject_name: Mapped[str] = mapped_column(String(80))
    requester_authority_code: Mapped[str] = mapped_column(String(60))
    requester_authority_name: Mapped[str] = mapped_column(String(80))
    requester_jurisdiction: Mapped[str] = mapped_column(String(6))
    officer_name: Mapped[str] = mapped_column(String(80))
    case_number: Mapped[str] = mapped_column(String(32))
    matter_name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(40))
    provider_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    #: answered | refused
    outcome: Mapped[str] = mapped_column(String(12))
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    #: Keys of the fields that were disclosed.
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: provider (this node decided) | notice (a copy sent to the subject's log holder)
    source: Mapped[str] = mapped_column(String(10), default="provider")
