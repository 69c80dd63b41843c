"""ORM tables of hospital capacity (EDXL-HAVE) and drill mode.

Capacity: every report a hospital's reporter files is kept (the history); the latest
per hospital is its current state. What other jurisdictions share of theirs arrives
as a per-city aggregate (kernel.replication.Published), replaced whole by each newer
publication.

Drills (演练): an exercise copies the current stock lots and the latest capacity
reports into rows carrying the drill's id, and its requests, commitments, dispatches
and receipts move only those copies: the real lots are never read for writing."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, new_id, utcnow


class CapacityReport(Base):
    """One hospital's availability at one moment (EDXL-HAVE ``Hospital``): beds by type
    (available now, and the baseline the hospital is staffed for), ventilators, the
    facility's and the emergency department's status. Never changed once written."""

    __tablename__ = "emergency_capacity_report"
    __table_args__ = (Index("ix_emergency_capacity_hospital_at", "hospital_code", "reported_at"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: Unique in the federation: the city's code, a dash and the hospital's own.
    hospital_code: Mapped[str] = mapped_column(String(40))
    hospital_name: Mapped[str] = mapped_column(String(120))
    jurisdiction_code: Mapped[str] = mapped_column(String(6), index=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    #: When the counts were true (EDXL-HAVE LastUpdateTime).
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: domain capacity.FacilityStatus / EDStatus.
    status: Mapped[str] = mapped_column(String(20))
    ed_status: Mapped[str] = mapped_column(String(20))
    general_available: Mapped[int] = mapped_column(Integer, default=0)
    general_baseline: Mapped[int] = mapped_column(Integer, default=0)
    icu_available: Mapped[int] = mapped_column(Integer, default=0)
    icu_baseline: Mapped[int] = mapped_column(Integer, default=0)
    isolation_available: Mapped[int] = mapped_column(Integer, default=0)
    isolation_baseline: Mapped[int] = mapped_column(Integer, default=0)
    ventilators_available: Mapped[int] = mapped_column(Integer, default=0)
    ventilators_baseline: Mapped[int] = mapped_column(Integer, default=0)
    comment: Mapped[str] = mapped_column(String(500), default="")
    #: form, json or edxl-have.
    source: Mapped[str] = mapped_column(String(12), default="form")
    reported_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SharedCapacity(Base):
    """Another jurisdiction's published capacity per city (sum over its hospitals'
    latest reports), as of its newest publication."""

    __tablename__ = "emergency_shared_capacity"
    jurisdiction_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    hospitals: Mapped[int] = mapped_column(Integer)
    #: {"general": [available, baseline], "icu": …, "isolation": …, "ventilators": …}.
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: How many hospitals' emergency departments are diverting or closed.
    ed_diverting: Mapped[int] = mapped_column(Integer, default=0)
    oldest_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    source_node: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Drill(Base):
    """An exercise (演练) of one jurisdiction run on copies of its stock and capacity."""

    __tablename__ = "emergency_drill"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    jurisdiction_code: Mapped[str] = mapped_column(String(6), index=True)
    #: open, closed (kept with its summary) or discarded (copies deleted).
    state: Mapped[str] = mapped_column(String(12), index=True, default="open")
    #: The latest capacity report of each hospital when the drill began.
    capacity: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DrillLot(Base):
    """A copy of a stock lot inside a drill: the drill's movements change this only."""

    __tablename__ = "emergency_drill_lot"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    drill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_drill.id"), index=True)
    #: The real lot it was copied from (None: made by a drill receipt).
    source_lot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    point_code: Mapped[str] = mapped_column(String(40))
    jurisdiction_code: Mapped[str] = mapped_column(String(6))
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    item_code: Mapped[str] = mapped_column(String(40), index=True)
    batch: Mapped[str] = mapped_column(String(40), default="")
    expiry: Mapped[date | None] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    #: The quantity when copied.
    copied: Mapped[int] = mapped_column(Integer, default=0)


class DrillRequest(Base):
    """A request of a drill, from one city to another city's reserves, with its
    commitment, dispatch and receipt (each a step on the drill's copies)."""

    __tablename__ = "emergency_drill_request"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    drill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_drill.id"), index=True)
    requester_city: Mapped[str] = mapped_column(String(6))
    giver_city: Mapped[str] = mapped_column(String(6))
    item_code: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)
    committed: Mapped[int] = mapped_column(Integer, default=0)
    dispatched: Mapped[int] = mapped_column(Integer, default=0)
    received: Mapped[int] = mapped_column(Integer, default=0)
    #: requested, committed, dispatched, received, declined.
    state: Mapped[str] = mapped_column(String(12), default="requested")
    #: [{"step", "at", "by", "quantity"}].
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
