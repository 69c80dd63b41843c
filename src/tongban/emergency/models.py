"""ORM tables of the emergency context.

Reserves: who holds an emergency duty, the reserve points of each city, the stock lots
(a batch of one item at one point) whose every movement is an event of the kernel's
history (numbered per lot, in the audit chain, the lot's version guarding it), the
cities' quotas, the alerts the watch job raises, and what other jurisdictions share of
their stock (per city and item, replaced whole by each newer publication)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.kernel.history import EventRow, HasHistory, Versioned


class EmergencyDuty(Base):
    """An emergency duty (domain.Duty) of a staff account, for one city or, without a
    city, for every city of the jurisdiction."""

    __tablename__ = "emergency_duty"
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), primary_key=True)
    duty: Mapped[str] = mapped_column(String(20), primary_key=True)
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    city_code: Mapped[str | None] = mapped_column(ForeignKey("city.code"), index=True)
    granted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReservePoint(Base):
    """A reserve point (储备点) of a city: a government store, a hospital's, or an
    enterprise's that keeps stock on the government's behalf."""

    __tablename__ = "emergency_point"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: Unique in the federation: the city's code, a dash and the point's own.
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    #: domain.PointKind.
    kind: Mapped[str] = mapped_column(String(20))
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StockLot(Base, HasHistory["StockEvent"], Versioned):
    """What one reserve point holds of one batch of one item. Its quantity changes only
    through a movement, which is an event of its history (domain.Movement)."""

    __tablename__ = "emergency_lot"
    __table_args__ = (UniqueConstraint("point_id", "item_code", "batch"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    point_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_point.id"), index=True)
    item_code: Mapped[str] = mapped_column(String(40), index=True)
    batch: Mapped[str] = mapped_column(String(40), default="")
    expiry: Mapped[date | None] = mapped_column(Date, index=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    #: domain.LotState.
    state: Mapped[str] = mapped_column(String(12), default="in_stock")
    #: The point's, kept here for the stock tables' sums.
    jurisdiction_code: Mapped[str] = mapped_column(String(6), index=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    point: Mapped[ReservePoint] = relationship()
    events: Mapped[list[StockEvent]] = relationship(
        back_populates="lot", order_by="StockEvent.seq", cascade="all, delete-orphan"
    )


class StockEvent(Base, EventRow):
    """A stock movement of a lot (kernel EventRow): `action` is the movement, the payload
    carries the quantity before and after and what it refers to (a shipment, an upload)."""

    __tablename__ = "emergency_lot_event"
    __history_key__ = "lot_id"
    __audit_kind__ = "emergency.lot.event"
    __audit_subject__ = ("emergency_lot", "lot_id")
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_lot.id"), index=True)
    lot: Mapped[StockLot] = relationship(back_populates="events")


class Quota(Base):
    """A city's reserve quota (储备定额) of an item, overriding the catalogue's default."""

    __tablename__ = "emergency_quota"
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    minimum: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Alert(Base):
    """Something the emergency staff of a city or jurisdiction should look at (low stock,
    a batch about to expire, mutual aid overdue), raised by the watch job, kept open
    while its cause lasts and resolved when it ends. One row per (kind, key)."""

    __tablename__ = "emergency_alert"
    __table_args__ = (UniqueConstraint("kind", "key"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: domain.AlertKind.
    kind: Mapped[str] = mapped_column(String(20))
    #: What it is about (a city and item, a lot, a request …): the alert's identity.
    key: Mapped[str] = mapped_column(String(120))
    jurisdiction_code: Mapped[str] = mapped_column(String(6), index=True)
    city_code: Mapped[str | None] = mapped_column(String(6), index=True)
    text: Mapped[str] = mapped_column(String(300))
    #: 1: the duty holders; 2: also the jurisdiction's supervisors.
    level: Mapped[int] = mapped_column(Integer, default=1)
    link: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class SharedStock(Base):
    """What another jurisdiction's node shares of its stock: per city and item, as of its
    newest publication (kernel.replication.Published: an older one changes nothing)."""

    __tablename__ = "emergency_shared_stock"
    jurisdiction_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: Every unit held, the usable ones (not expired), those close to expiry.
    quantity: Mapped[int] = mapped_column(Integer)
    available: Mapped[int] = mapped_column(Integer)
    expiring: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    source_node: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
