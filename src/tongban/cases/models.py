from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
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
    #: 多地联办: a sub-task points at its parent application.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service_case.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.seq", cascade="all, delete-orphan"
    )
    # The shared attachment store (tongban.files) knows no case: linked from this side only.
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.uploaded_at")
    subtasks: Mapped[list[Case]] = relationship(back_populates="parent")
    parent: Mapped[Case | None] = relationship(back_populates="subtasks", remote_side=[id])


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
