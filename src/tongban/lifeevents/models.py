"""ORM tables of life-event bundles: a bundle (the kernel's history and version guard), its
history (EventRow, in the audit chain), and its steps, one row per step of its definition,
each pointing at the case it started."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.kernel.history import EventRow, HasHistory, Versioned


class Bundle(Base, HasHistory["BundleEvent"], Versioned):
    """One submission of a life-event bundle (一件事) by an applicant. It lives on the
    applicant's node, where its cases are received; its steps' cases travel to their
    competent authorities like any case, and their steps come back to it. Every change of
    its steps is an event of the bundle, so the bundle's version guards them all."""

    __tablename__ = "life_bundle"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: domain.bundle_number: YJS + city + day + sequence.
    number: Mapped[str] = mapped_column(String(32), unique=True)
    #: The definition's code (data/bundles.json) and its name when submitted.
    bundle_code: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(120))
    applicant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    applicant_name: Mapped[str] = mapped_column(String(80))
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"))
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"))
    #: domain.BundleState.
    state: Mapped[str] = mapped_column(String(24), index=True)
    #: The merged form as submitted (asked once, mapped to each step's matter form).
    form_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Material code -> id of the file uploaded with the bundle (copied for each case).
    uploads: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    phone: Mapped[str | None] = mapped_column(String(20))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When no step was left waiting or being handled.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list[BundleEvent]] = relationship(
        back_populates="bundle", order_by="BundleEvent.seq", cascade="all, delete-orphan"
    )
    steps: Mapped[list[BundleStep]] = relationship(
        back_populates="bundle", order_by="BundleStep.seq", cascade="all, delete-orphan"
    )


class BundleEvent(Base, EventRow):
    """Append-only history of a bundle: submitted, each step started, done, failed,
    blocked or skipped (the step and its case in the payload), and the bundle's moves."""

    __tablename__ = "life_bundle_event"
    __history_key__ = "bundle_id"
    __audit_kind__ = "lifeevents.event"
    __audit_subject__ = ("life_bundle", "bundle_id")
    bundle_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("life_bundle.id"), index=True)
    bundle: Mapped[Bundle] = relationship(back_populates="events")


class BundleStep(Base):
    """One step of a bundle: a matter at a competent authority, and the one case started
    for it (`case_id` is unique: a re-delivered event can never start a second case)."""

    __tablename__ = "life_bundle_step"
    __table_args__ = (UniqueConstraint("bundle_id", "key"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bundle_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("life_bundle.id"), index=True)
    #: The step's key in the definition, and its position there.
    key: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(80))
    matter_code: Mapped[str] = mapped_column(ForeignKey("matter.code"))
    #: domain.StepState.
    state: Mapped[str] = mapped_column(String(12))
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service_case.id"), unique=True, index=True
    )
    case_number: Mapped[str | None] = mapped_column(String(32))
    #: Where the case went (set when it starts).
    jurisdiction_code: Mapped[str | None] = mapped_column(ForeignKey("jurisdiction.code"))
    authority_name: Mapped[str | None] = mapped_column(String(80))
    #: What the resident should know: why it failed or cannot start, what it blocks.
    note: Mapped[str] = mapped_column(Text, default="")
    #: The e-licence its case produced, when this node holds it (免提交 for later steps).
    licence_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    licence_identifier: Mapped[str | None] = mapped_column(String(120))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    bundle: Mapped[Bundle] = relationship(back_populates="steps")
