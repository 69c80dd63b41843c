from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.files.models import Attachment as Attachment
from tongban.kernel.history import EventRow, HasHistory, Versioned

# The counter of case numbers is the kernel's table: in the metadata with the cases.
from tongban.kernel.numbering import NumberCounter as NumberCounter


class Case(Base, HasHistory["CaseEvent"], Versioned):
    """An application (办件). On one node there is one row per case; when the receiving
    and the competent jurisdiction run separate nodes, each holds its copy, kept in step
    by exchange messages keyed on `number`. Its history is kept by the kernel
    (`event_seq` numbers the events, `version` guards every change)."""

    __tablename__ = "service_case"
    #: Lists (migration 0041): the officer's queue, the others' newest first.
    __table_args__ = (
        Index("ix_case_authority_queue", "authority_id", "deadline", "submitted_at", "id"),
        #: The workbench's bounded queue counts (migration 0040).
        Index("ix_case_authority_state", "authority_id", "state", "handoff"),
        Index("ix_case_applicant_submitted", "applicant_id", "submitted_at"),
        Index("ix_case_competent_submitted", "competent_jurisdiction", "submitted_at"),
        Index("ix_case_receiving_submitted", "receiving_city", "submitted_at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    matter_code: Mapped[str] = mapped_column(ForeignKey("matter.code"), index=True)
    matter_name: Mapped[str] = mapped_column(String(120))
    applicant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"), index=True)
    applicant_type: Mapped[str] = mapped_column(String(20))  # resident | enterprise
    applicant_name: Mapped[str] = mapped_column(String(80))
    #: ID number or unified social credit code.
    applicant_identifier: Mapped[str] = mapped_column(String(18))
    applicant_phone: Mapped[str | None] = mapped_column(String(20))
    #: online | window
    channel: Mapped[str] = mapped_column(String(10))
    #: online (全程网办) | proxy (异地代收代办) | joint (多地联办)
    mode: Mapped[str] = mapped_column(String(10))
    receiving_jurisdiction: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"))
    receiving_city: Mapped[str] = mapped_column(ForeignKey("city.code"), index=True)
    #: The window clerk who received it (异地代收), if any.
    clerk_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"), index=True)
    identity_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    competent_jurisdiction: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    competent_city: Mapped[str | None] = mapped_column(ForeignKey("city.code"))
    authority_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authority.id"), index=True)
    authority_name: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(24), index=True)
    #: Handoff to the competent jurisdiction: pending until the forwarding message lands.
    handoff: Mapped[str] = mapped_column(String(12), default="pending")
    form_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Consent given at submission to use the applicant's data for this case.
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    delivery_method: Mapped[str] = mapped_column(String(12), default="electronic")
    delivery_address: Mapped[str | None] = mapped_column(String(200))
    result_text: Mapped[str | None] = mapped_column(Text)
    time_limit_days: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline: Mapped[date | None] = mapped_column(Date, index=True)
    #: ok | approaching | overdue, kept by the worker.
    deadline_flag: Mapped[str] = mapped_column(String(12), default="ok", index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The statutory clock: since when it is paused (审查中补正), and the working days of
    #: the pauses already ended (the deadline was moved by them).
    clock_paused_since: Mapped[date | None] = mapped_column(Date)
    clock_paused_days: Mapped[int] = mapped_column(Integer, default=0)
    #: 多地联办: a sub-task points at its parent application.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service_case.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.seq", cascade="all, delete-orphan"
    )
    # The shared attachment store (tongban.files) knows no case: linked from this side only.
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.uploaded_at")
    subtasks: Mapped[list[Case]] = relationship(back_populates="parent")
    corrections: Mapped[list[CaseCorrection]] = relationship(
        back_populates="case", order_by="CaseCorrection.requested_at", cascade="all, delete-orphan"
    )
    documents: Mapped[list[CaseDocument]] = relationship(
        back_populates="case", order_by="CaseDocument.issued_at", cascade="all, delete-orphan"
    )
    parent: Mapped[Case | None] = relationship(back_populates="subtasks", remote_side=[id])
    #: 免提交 at a (virtual) window: licences presented and verified instead of materials.
    presented_licences: Mapped[list[PresentedLicence]] = relationship(
        back_populates="case", order_by="PresentedLicence.material_code"
    )


class CaseEvent(Base, EventRow):
    """Append-only history of a case: who, when, from, to, why (kernel EventRow)."""

    # Each new event is appended to the audit chain (tongban.audit.hook); the comment
    # and the payload enter it only as digests.
    __audit_kind__ = "case.event"
    __audit_subject__ = ("case", "case_id")

    __tablename__ = "case_event"
    __history_key__ = "case_id"
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_case.id"), index=True)

    case: Mapped[Case] = relationship(back_populates="events")


class Rating(Base):
    """好差评: one rating per case, 1 (非常不满意) … 5 (非常满意)."""

    __tablename__ = "rating"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_case.id"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Rectification(Base):
    """差评整改: opened for the authority when a rating is 1 or 2."""

    __tablename__ = "rectification"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_case.id"), index=True)
    authority_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authority.id"), index=True)
    rating_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rating.id"))
    status: Mapped[str] = mapped_column(String(12), default="open")
    reason: Mapped[str] = mapped_column(Text, default="")
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseCorrection(Base):
    """A correction notice (补正通知, 一次性告知): every missing or wrong material at once,
    each with its reason, and the applicant's deadline in working days. One per stage
    (before acceptance, during review); both copies of a case hold it (it travels with
    the request_correction step)."""

    __tablename__ = "case_correction"
    __table_args__ = (UniqueConstraint("case_id", "stage"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_case.id"), index=True)
    #: intake (受理前) | review (审查中)
    stage: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    #: [{code, name, reason, listed}], in the order the officer gave them.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    deadline_days: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[date] = mapped_column(Date, index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(80), default="")
    #: open | answered | lapsed
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    reminded_on: Mapped[date | None] = mapped_column(Date)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship(back_populates="corrections")


class CaseDocument(Base):
    """A result document (决定书, 不予受理/不予许可决定书): generated once, stored by its
    SHA-256 in the file store, so the bytes a QR code verifies never change. `token` is
    the unguessable id printed in the verify URL."""

    __tablename__ = "case_document"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_case.id"), index=True)
    #: approval | refusal | denial
    kind: Mapped[str] = mapped_column(String(12))
    title: Mapped[str] = mapped_column(String(80))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="documents")


class PresentedLicence(Base):
    """免提交 with a licence presented at a counter (a virtual window's) and verified by a
    node — usually the competent one — that keeps neither the licence nor the presentation:
    what was verified, by whom and when, and the presentation's SHA-256. It satisfies its
    material like an upload, and travels with the forwarded case (migration 0046)."""

    __tablename__ = "case_presented_licence"
    __table_args__ = (UniqueConstraint("case_id", "material_code"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_case.id"), index=True)
    #: The matter's material it stands in for.
    material_code: Mapped[str] = mapped_column(String(40))
    type_code: Mapped[str] = mapped_column(String(40))
    type_name: Mapped[str] = mapped_column(String(80))
    #: The licence's id (serial) as its issuer numbered it.
    licence_id: Mapped[str] = mapped_column(String(80))
    issuer: Mapped[str] = mapped_column(String(120))
    #: The node that verified it, as the receiving node names it (e.g. 安徽省合肥市).
    verified_by: Mapped[str] = mapped_column(String(80))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    presentation_sha256: Mapped[str] = mapped_column(String(64))
    #: "valid" (only a valid verification is stored; kept to say so on every copy).
    result: Mapped[str] = mapped_column(String(40))

    case: Mapped[Case] = relationship(back_populates="presented_licences")
