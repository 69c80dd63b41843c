"""ORM tables of the benefits context (免申即享).

Rule versions (the definition as JSON, one active version per rule), what the platform
holds about a person for evaluation (with each datum's source), offers and grants with
their kernel history, and reviews an officer decides before anything is stopped."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.kernel.history import EventRow, HasHistory, Versioned


class BenefitRule(Base):
    """One version of a benefit rule: draft (being previewed), active (evaluated on
    every trigger) or retired (superseded; its offers keep naming it)."""

    __tablename__ = "benefit_rule"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    rule_id: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(Integer)
    #: draft | active | retired
    state: Mapped[str] = mapped_column(String(12), index=True)
    name: Mapped[str] = mapped_column(String(80))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(80), default="系统")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_by: Mapped[str | None] = mapped_column(String(80))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The rule's own `version` is its number, so the row's optimistic counter (what
    # kernel.history.Versioned gives other tables) is `row_version`.
    row_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012


class BenefitSubject(Base):
    """What the platform holds about one person for evaluating benefits: each datum
    (domain.DATA) with its value, source and when it was learnt. `birth_md` (MM-DD)
    lets the daily birthday job find today's people without reading everyone."""

    __tablename__ = "benefit_subject"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    identifier: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    birth_md: Mapped[str | None] = mapped_column(String(5), index=True)
    #: {key: {"value": …, "source": "…", "at": "ISO time"}}
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BenefitOffer(Base, HasHistory["BenefitOfferEvent"], Versioned):
    """An offer (the resident accepts) or a grant of one benefit to one person, with the
    trace of the evaluation that made it. One per (person, rule, entitlement): a
    re-delivered trigger, or a later one for the same entitlement, finds it."""

    __tablename__ = "benefit_offer"
    __table_args__ = (UniqueConstraint("subject_identifier", "rule_id", "entitlement"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    subject_identifier: Mapped[str] = mapped_column(String(18), index=True)
    subject_name: Mapped[str] = mapped_column(String(80))
    rule_id: Mapped[str] = mapped_column(String(40), index=True)
    rule_version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(80))
    entitlement: Mapped[str] = mapped_column(String(40))
    trigger_key: Mapped[str] = mapped_column(String(120))
    #: domain.OfferState
    state: Mapped[str] = mapped_column(String(12), index=True)
    trace: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    events: Mapped[list[BenefitOfferEvent]] = relationship(
        back_populates="offer", order_by="BenefitOfferEvent.seq", cascade="all, delete-orphan"
    )


class BenefitOfferEvent(Base, EventRow):
    __tablename__ = "benefit_offer_event"
    __history_key__ = "offer_id"
    __audit_kind__ = "benefit.offer.event"
    __audit_subject__ = ("benefit_offer", "offer_id")
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("benefit_offer.id"), index=True)
    offer: Mapped[BenefitOffer] = relationship(back_populates="events")


class BenefitReview(Base, HasHistory["BenefitReviewEvent"], Versioned):
    """A re-evaluation found a person no longer eligible for a benefit they hold: an
    officer decides (keep or stop, with a reason); nothing stops by itself. One per
    (offer, trigger)."""

    __tablename__ = "benefit_review"
    __table_args__ = (UniqueConstraint("offer_id", "trigger_key"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("benefit_offer.id"), index=True)
    trigger_key: Mapped[str] = mapped_column(String(120))
    rule_version: Mapped[int] = mapped_column(Integer)
    #: domain.ReviewState
    state: Mapped[str] = mapped_column(String(12), index=True)
    trace: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    offer: Mapped[BenefitOffer] = relationship()
    events: Mapped[list[BenefitReviewEvent]] = relationship(
        back_populates="review", order_by="BenefitReviewEvent.seq", cascade="all, delete-orphan"
    )


class BenefitReviewEvent(Base, EventRow):
    __tablename__ = "benefit_review_event"
    __history_key__ = "review_id"
    __audit_kind__ = "benefit.review.event"
    __audit_subject__ = ("benefit_review", "review_id")
    review_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("benefit_review.id"), index=True)
    review: Mapped[BenefitReview] = relationship(back_populates="events")
