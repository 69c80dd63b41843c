"""ORM tables of the emergency context.

Mutual aid: requests, the asked jurisdictions' commitments and their shipments, each
with its kernel history (numbered events in the audit chain, a version guard) and a
copy on the other side's node (kernel.replication).

Reserves: who holds an emergency duty, the reserve points of each city, the stock lots
(a batch of one item at one point) whose every movement is an event of the kernel's
history (numbered per lot, in the audit chain, the lot's version guarding it), the
cities' quotas, the alerts the watch job raises, and what other jurisdictions share of
their stock (per city and item, replaced whole by each newer publication)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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


class StockTotal(Base):
    """The maintained sum of a city's stock of one item (every lot of it held here): the
    units and the points holding some. Changed in the transaction of every movement
    (stock_sums.py), so the reserve table reads one row per city and item instead of
    summing the lots."""

    __tablename__ = "emergency_stock_total"
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    #: Indexed for one item's row across the cities.
    item_code: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    jurisdiction_code: Mapped[str] = mapped_column(String(6), index=True)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Reserve points holding some of the item (their StockAtPoint quantity above 0).
    points: Mapped[int] = mapped_column(Integer, default=0)


class StockByExpiry(Base):
    """The maintained sum of a city's stock of one perishable item per expiry date: what
    the usable and close-to-expiry units of a day are computed from (only dates with
    stock have a row)."""

    __tablename__ = "emergency_stock_expiry"
    #: One item's dates across the cities (the primary key leads with the city).
    __table_args__ = (Index("ix_emergency_stock_expiry_item_expiry", "item_code", "expiry"),)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    expiry: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    jurisdiction_code: Mapped[str] = mapped_column(String(6), index=True)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)


class StockAtPoint(Base):
    """The maintained sum of one item at one reserve point (every batch): whether the
    point counts among its city's points holding the item."""

    __tablename__ = "emergency_stock_point"
    point_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_point.id"), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)


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


# --- mutual aid (互助调拨) -------------------------------------------------------------------
#
# Each record lives on both nodes: the original where it was made, a copy (`replica`)
# kept in step by kernel.replication. Lines, boxes and receipts are JSON on the record:
# they are fixed once written and always read with it.


class AidRequest(Base, HasHistory["AidRequestEvent"], Versioned):
    """A request for supplies (EDXL-RM RequestResource) from a city to one or several
    jurisdictions: what, how much, how urgent, delivered where."""

    __tablename__ = "emergency_request"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: domain.request_number: HZ, the city, the day and a sequence.
    number: Mapped[str] = mapped_column(String(24), unique=True)
    requester_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    requester_city: Mapped[str] = mapped_column(String(6), index=True)
    #: The reserve point of the requesting city that receives the shipments.
    destination_code: Mapped[str] = mapped_column(String(40))
    destination_name: Mapped[str] = mapped_column(String(120))
    destination_address: Mapped[str] = mapped_column(String(200), default="")
    #: domain.Urgency.
    urgency: Mapped[str] = mapped_column(String(12))
    #: What it is for (事由: the incident).
    title: Mapped[str] = mapped_column(String(200))
    #: Who to call about it (a name and a number; for logistics only).
    contact: Mapped[str] = mapped_column(String(120), default="")
    #: [{"item": code, "quantity": n}].
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: The jurisdictions asked.
    targets: Mapped[list[str]] = mapped_column(JSON)
    #: domain.RequestState.
    state: Mapped[str] = mapped_column(String(12), index=True)
    respond_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the supplies are needed at the destination (RequestedArrival).
    arrive_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    #: A copy of a request made on another node.
    replica: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    events: Mapped[list[AidRequestEvent]] = relationship(
        back_populates="request", order_by="AidRequestEvent.seq", cascade="all, delete-orphan"
    )
    commitments: Mapped[list[Commitment]] = relationship(
        back_populates="request", order_by="Commitment.created_at"
    )


class AidRequestEvent(Base, EventRow):
    __tablename__ = "emergency_request_event"
    __history_key__ = "request_id"
    __audit_kind__ = "emergency.request.event"
    __audit_subject__ = ("emergency_request", "request_id")
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_request.id"), index=True)
    request: Mapped[AidRequest] = relationship(back_populates="events")


class Commitment(Base, HasHistory["CommitmentEvent"], Versioned):
    """One asked jurisdiction's answer to a request (EDXL-RM ResponseToRequestResource /
    CommitResource): what it commits (possibly less than asked), or that it cannot help;
    then what it has shipped of it."""

    __tablename__ = "emergency_commitment"
    __table_args__ = (UniqueConstraint("request_id", "giver_jurisdiction"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_request.id"), index=True)
    #: The request's number, a dash and the giver's jurisdiction.
    number: Mapped[str] = mapped_column(String(40), unique=True)
    giver_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    #: The committing coordinator's city (None: the jurisdiction as a whole).
    giver_city: Mapped[str | None] = mapped_column(String(6))
    #: domain.CommitmentState.
    state: Mapped[str] = mapped_column(String(12), index=True)
    #: [{"item": code, "quantity": n}] committed (empty when declined).
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: Conditions of the commitment, or why the giver cannot help.
    note: Mapped[str] = mapped_column(Text, default="")
    dispatch_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    replica: Mapped[bool] = mapped_column(Boolean, default=False)
    committed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    request: Mapped[AidRequest] = relationship(back_populates="commitments")
    events: Mapped[list[CommitmentEvent]] = relationship(
        back_populates="commitment", order_by="CommitmentEvent.seq", cascade="all, delete-orphan"
    )
    shipments: Mapped[list[Shipment]] = relationship(
        back_populates="commitment", order_by="Shipment.created_at"
    )


class CommitmentEvent(Base, EventRow):
    __tablename__ = "emergency_commitment_event"
    __history_key__ = "commitment_id"
    __audit_kind__ = "emergency.commitment.event"
    __audit_subject__ = ("emergency_commitment", "commitment_id")
    commitment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("emergency_commitment.id"), index=True
    )
    commitment: Mapped[Commitment] = relationship(back_populates="events")


class Shipment(Base, HasHistory["ShipmentEvent"], Versioned):
    """A consignment of a commitment (EDXL-RM ReportResourceDeploymentStatus): which
    point it left, on which vehicle, in which boxes (each one batch of one item, with a
    code), and once it arrived what was counted in each box."""

    __tablename__ = "emergency_shipment"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: domain.shipment_number: FY, the dispatching city, the day and a sequence.
    number: Mapped[str] = mapped_column(String(24), unique=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_request.id"), index=True)
    commitment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("emergency_commitment.id"), index=True
    )
    giver_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    requester_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    from_point_code: Mapped[str] = mapped_column(String(40))
    from_point_name: Mapped[str] = mapped_column(String(120))
    from_city: Mapped[str] = mapped_column(String(6))
    destination_code: Mapped[str] = mapped_column(String(40))
    vehicle: Mapped[str] = mapped_column(String(40))
    driver: Mapped[str] = mapped_column(String(80), default="")
    contact: Mapped[str] = mapped_column(String(120), default="")
    #: [{"code", "item", "batch", "expiry", "quantity"}].
    boxes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: domain.ShipmentState.
    state: Mapped[str] = mapped_column(String(12), index=True)
    dispatched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    arrive_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: {box code: units counted}, once received.
    counts: Mapped[dict[str, int] | None] = mapped_column(JSON)
    #: [{"item", "shipped", "received", "difference"}], once received.
    receipt: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    receipt_note: Mapped[str] = mapped_column(Text, default="")
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    replica: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    commitment: Mapped[Commitment] = relationship(back_populates="shipments")
    events: Mapped[list[ShipmentEvent]] = relationship(
        back_populates="shipment", order_by="ShipmentEvent.seq", cascade="all, delete-orphan"
    )


class ShipmentEvent(Base, EventRow):
    __tablename__ = "emergency_shipment_event"
    __history_key__ = "shipment_id"
    __audit_kind__ = "emergency.shipment.event"
    __audit_subject__ = ("emergency_shipment", "shipment_id")
    shipment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emergency_shipment.id"), index=True)
    shipment: Mapped[Shipment] = relationship(back_populates="events")


from tongban.emergency import capacity_models as capacity_models  # noqa: E402  (its tables)
from tongban.emergency import incidents_models as incidents_models  # noqa: E402  (its tables)
