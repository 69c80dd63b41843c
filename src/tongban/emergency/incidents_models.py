"""ORM tables of incidents and hand-overs (imported by emergency/models.py).

An incident and a hand-over each live on several nodes: the original on the node of
the jurisdiction that writes it (the lead's, the sender's), a copy (`replica`) on each
other party's, kept in step by kernel.replication. A task row is a projection of the
incident's `task` / `task_update` events, kept on every node; only the node serving the
task's city links it to the work order it made."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.kernel.history import EventRow, HasHistory, Versioned


class Incident(Base, HasHistory["IncidentEvent"], Versioned):
    """A joint response (联防联控) to an emergency spanning cities: a lead jurisdiction,
    participants, tasks and a shared timeline (the events)."""

    __tablename__ = "emergency_incident"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: domain.incident_number: SJ, the lead city, the day and a sequence.
    number: Mapped[str] = mapped_column(String(24), unique=True)
    #: domain.IncidentType / Severity / IncidentState.
    type: Mapped[str] = mapped_column(String(12))
    severity: Mapped[str] = mapped_column(String(4))
    title: Mapped[str] = mapped_column(String(120))
    summary: Mapped[str] = mapped_column(Text, default="")
    lead_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    lead_city: Mapped[str] = mapped_column(String(6))
    #: The cities the incident spans, and the jurisdictions taking part (not the lead).
    cities: Mapped[list[str]] = mapped_column(JSON)
    participants: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), index=True)
    replica: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    events: Mapped[list[IncidentEvent]] = relationship(
        back_populates="incident", order_by="IncidentEvent.seq", cascade="all, delete-orphan"
    )
    tasks: Mapped[list[IncidentTask]] = relationship(
        back_populates="incident", order_by="IncidentTask.position", cascade="all, delete-orphan"
    )


class IncidentEvent(Base, EventRow):
    __tablename__ = "emergency_incident_event"
    __history_key__ = "incident_id"
    __audit_kind__ = "emergency.incident.event"
    __audit_subject__ = ("emergency_incident", "incident_id")
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_incident.id"), index=True)
    incident: Mapped[Incident] = relationship(back_populates="events")


class IncidentTask(Base):
    """A task of an incident for one city (from its `task` event), and what became of
    the work order it made on the node serving that city (from `task_update` events)."""

    __tablename__ = "emergency_incident_task"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_incident.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    jurisdiction_code: Mapped[str] = mapped_column(String(6), index=True)
    city_code: Mapped[str] = mapped_column(String(6))
    category_code: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    #: Only on the node holding the work order (tickets' row id).
    work_order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    work_order_number: Mapped[str | None] = mapped_column(String(32))
    work_order_state: Mapped[str | None] = mapped_column(String(20))
    work_order_label: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    incident: Mapped[Incident] = relationship(back_populates="tasks")


class Handover(Base, HasHistory["HandoverEvent"], Versioned):
    """A person-related case handed from one jurisdiction to the competent one
    (e.g. a close contact who travelled there): purpose-bound, carrying only the fields
    the purpose needs. `owner_jurisdiction` on the sender's record (replica False) is the
    authority on who owns the case; see docs/emergency.md "Hand-overs"."""

    __tablename__ = "emergency_handover"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: domain.handover_number: YJ, the sending city, the day and a sequence.
    number: Mapped[str] = mapped_column(String(24), unique=True)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    incident_number: Mapped[str | None] = mapped_column(String(24))
    #: domain.PURPOSES key.
    purpose: Mapped[str] = mapped_column(String(30))
    #: Why, in the sender's words (recorded with the purpose).
    reason: Mapped[str] = mapped_column(Text, default="")
    sender_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    sender_city: Mapped[str] = mapped_column(String(6))
    receiver_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    receiver_city: Mapped[str] = mapped_column(String(6))
    #: Exactly one jurisdiction, never none: the sender's until the transfer commits.
    owner_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    #: The minimised fields of the person (domain.minimise), nothing else.
    subject: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), index=True)
    #: On the receiver's copy: its own answer, queued for the sender (accept / refuse),
    #: until the sender's record says what became of it.
    answer: Mapped[str | None] = mapped_column(String(8))
    answer_note: Mapped[str] = mapped_column(Text, default="")
    replica: Mapped[bool] = mapped_column(Boolean, default=False)
    offered_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    transferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    events: Mapped[list[HandoverEvent]] = relationship(
        back_populates="handover", order_by="HandoverEvent.seq", cascade="all, delete-orphan"
    )


class HandoverEvent(Base, EventRow):
    __tablename__ = "emergency_handover_event"
    __history_key__ = "handover_id"
    __audit_kind__ = "emergency.handover.event"
    __audit_subject__ = ("emergency_handover", "handover_id")
    handover_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_handover.id"), index=True)
    handover: Mapped[Handover] = relationship(back_populates="events")
