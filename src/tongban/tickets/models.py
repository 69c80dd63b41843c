"""Tables of the tickets context: work orders, their history, photos, co-handlers,
notices, extensions, supervision orders, major tasks and Open311 clients."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.kernel.history import EventRow, HasHistory, Versioned


class WorkOrder(Base, HasHistory["TicketEvent"], Versioned):
    """A reported problem (工单), from intake to closure. Its history is `events` (the
    kernel numbers them), and every UPDATE checks its `version` (two officers acting at
    once: one succeeds, the other gets a 409)."""

    __tablename__ = "ticket"
    #: Open311 GET requests: a city's newest first.
    #: Lists (migration 0041): staff by deadline (all; a city's, province's, authority's),
    #: a reporter's newest first.
    __table_args__ = (
        Index("ix_ticket_city_created", "city_code", "created_at"),
        Index("ix_ticket_due_order", "due_at", "created_at", "id"),
        Index("ix_ticket_city_due", "city_code", "due_at", "created_at", "id"),
        Index("ix_ticket_jurisdiction_due", "jurisdiction_code", "due_at", "created_at", "id"),
        Index("ix_ticket_authority_due", "authority_id", "due_at", "created_at", "id"),
        Index("ix_ticket_reporter_created", "reporter_id", "created_at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    #: web | hotline | grid | open311
    channel: Mapped[str] = mapped_column(String(10), index=True)
    category_code: Mapped[str] = mapped_column(String(40), index=True)
    urgency: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    #: ~1 km grid cell ("<lat×100>:<lon×100>") for duplicates and hot spots.
    cell: Mapped[str | None] = mapped_column(String(20), index=True)
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), index=True)
    district_code: Mapped[str | None] = mapped_column(String(6))
    #: The lead authority (主办): it owns the fix.
    authority_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("authority.id"), index=True)
    authority_name: Mapped[str] = mapped_column(String(80), default="")
    #: Why routing chose the lead authority (shown to dispatchers).
    routing_note: Mapped[str] = mapped_column(String(300), default="")
    joint: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20), index=True)
    resolution: Mapped[str | None] = mapped_column(String(20))
    reporter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"), index=True)
    reporter_name: Mapped[str] = mapped_column(String(80), default="")
    reporter_phone: Mapped[str | None] = mapped_column(String(20))
    reporter_email: Mapped[str | None] = mapped_column(String(120))
    #: Who recorded it (hotline operator, grid inspector), if not the reporter.
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    #: Open311: the client that posted it, the client's token, device and account ids.
    open311_client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("open311_client.id"))
    open311_token: Mapped[str | None] = mapped_column(String(40), unique=True)
    open311_account: Mapped[str | None] = mapped_column(String(80))
    open311_device: Mapped[str | None] = mapped_column(String(80))
    media_url: Mapped[str | None] = mapped_column(String(500))
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Deadline of the running clock, and the working minutes it allowed.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    allotted_minutes: Mapped[int] = mapped_column(Integer, default=0)
    deadline_rule: Mapped[str] = mapped_column(String(40), default="")
    #: ok | approaching | overdue, kept by the worker.
    deadline_flag: Mapped[str] = mapped_column(String(12), default="ok", index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: 0 none, 1 the authority's head, 2 the supervisor.
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The last fix came on or before the deadline then running.
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The reporter's last feedback: satisfied or not (None: none given).
    satisfied: Mapped[bool | None] = mapped_column(Boolean)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A co-handling node's copy of a joint work order whose lead authority is served by
    #: another node (service/federation.py): read-only here except for findings.
    replica: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: On a replica, the lead's running deadline (its own due_at stays empty, so that this
    #: node's deadline worker leaves it alone).
    lead_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="work_order", order_by="TicketEvent.seq", cascade="all, delete-orphan"
    )
    parties: Mapped[list[TicketParty]] = relationship(
        back_populates="work_order", cascade="all, delete-orphan"
    )
    photos: Mapped[list[TicketPhoto]] = relationship(
        back_populates="work_order", order_by="TicketPhoto.added_at"
    )
    merged: Mapped[list[WorkOrder]] = relationship(back_populates="merged_into")
    merged_into: Mapped[WorkOrder | None] = relationship(back_populates="merged", remote_side=[id])


class TicketEvent(Base, EventRow):
    """Append-only history of a work order: who, when, from, to, why (kernel EventRow:
    unique (ticket_id, seq), each one in the audit chain)."""

    __tablename__ = "ticket_event"
    __history_key__ = "ticket_id"
    __audit_kind__ = "ticket.event"
    __audit_subject__ = ("ticket", "ticket_id")
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket.id"), index=True)

    work_order: Mapped[WorkOrder] = relationship(back_populates="events")


class TicketParty(Base):
    """A co-handling authority (协办) of a joint border work order; it sees the order and
    adds its findings, while the lead authority drives it."""

    __tablename__ = "ticket_party"
    __table_args__ = (UniqueConstraint("ticket_id", "authority_id"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket.id"), index=True)
    authority_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authority.id"), index=True)
    authority_name: Mapped[str] = mapped_column(String(80))
    jurisdiction_code: Mapped[str] = mapped_column(String(6), index=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)

    work_order: Mapped[WorkOrder] = relationship(back_populates="parties")


class TicketPhoto(Base):
    """A photo of the problem (report) or of the fix (evidence); the bytes are an upload
    stored by content hash (cases' attachment store)."""

    __tablename__ = "ticket_photo"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket.id"), index=True)
    attachment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("attachment.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # report | evidence
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    work_order: Mapped[WorkOrder] = relationship(back_populates="photos")


class TicketNotice(Base):
    """A message to a reporter, an authority (its head) or a jurisdiction's supervisors:
    reminders, escalations, merges, outcomes."""

    __tablename__ = "ticket_notice"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"), index=True)
    authority_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("authority.id"), index=True)
    jurisdiction_code: Mapped[str | None] = mapped_column(String(6), index=True)
    #: Reporters without an account are told by SMS/phone through the hotline.
    phone: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketExtension(Base):
    """An authority's request for more time (延期申请), decided by a supervisor."""

    __tablename__ = "ticket_extension"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket.id"), index=True)
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
    working_days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    previous_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    new_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SupervisionOrder(Base):
    """督办单: a supervisor tightens a work order's deadline and demands an answer."""

    __tablename__ = "ticket_supervision"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket.id"), index=True)
    authority_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authority.id"), index=True)
    jurisdiction_code: Mapped[str] = mapped_column(String(6), index=True)
    issued_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
    demand: Mapped[str] = mapped_column(Text)
    previous_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: open | answered | closed
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Open311Client(Base):
    """An application allowed to POST service requests; only the key's SHA-256 is kept."""

    __tablename__ = "open311_client"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(80))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MajorTask(Base):
    """重大项目 / 重点任务 followed by supervisors: responsible units, milestones, reports."""

    __tablename__ = "major_task"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10))  # project | task
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
    #: on_track | slipped | done
    status: Mapped[str] = mapped_column(String(10), default="on_track", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    units: Mapped[list[MajorTaskUnit]] = relationship(
        back_populates="task", cascade="all, delete-orphan"
    )
    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="task", order_by="Milestone.due_date", cascade="all, delete-orphan"
    )
    reports: Mapped[list[ProgressReport]] = relationship(
        back_populates="task", order_by="ProgressReport.at", cascade="all, delete-orphan"
    )


class MajorTaskUnit(Base):
    __tablename__ = "major_task_unit"
    __table_args__ = (UniqueConstraint("task_id", "authority_id"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("major_task.id"), index=True)
    authority_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authority.id"), index=True)
    authority_name: Mapped[str] = mapped_column(String(80))
    lead: Mapped[bool] = mapped_column(Boolean, default=False)

    task: Mapped[MajorTask] = relationship(back_populates="units")


class Milestone(Base):
    __tablename__ = "major_task_milestone"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("major_task.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    due_date: Mapped[date] = mapped_column(Date)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slipped: Mapped[bool] = mapped_column(Boolean, default=False)

    task: Mapped[MajorTask] = relationship(back_populates="milestones")


class ProgressReport(Base):
    __tablename__ = "major_task_report"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("major_task.id"), index=True)
    milestone_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("major_task_milestone.id"))
    authority_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authority.id"))
    reported_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
    percent: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    task: Mapped[MajorTask] = relationship(back_populates="reports")
