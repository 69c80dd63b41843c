"""ORM tables of the virtual window.

On the competent node (where the authority's officers work) a session lives whole: its
state, the shared form, the locked fields, the identity check, its history (EventRow, in
the audit chain), its documents and its WebRTC signalling. On the clerk's node a
`WindowTicket` is all there is: which session this node's clerk runs, where it lives, and
the session secret that the competent node checks on every relayed call."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.kernel.history import EventRow, HasHistory, Versioned


class WindowSession(Base, HasHistory["WindowSessionEvent"], Versioned):
    """One virtual-window session, on the competent node."""

    __tablename__ = "vw_session"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: VW + competent jurisdiction + day + sequence (service.new_number).
    number: Mapped[str] = mapped_column(String(32), unique=True)
    matter_code: Mapped[str] = mapped_column(ForeignKey("matter.code"))
    competent_jurisdiction: Mapped[str] = mapped_column(String(6), index=True)
    competent_city: Mapped[str | None] = mapped_column(String(6))
    #: The competent authority: its officers see the session in their queue.
    authority_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authority.id"), index=True)
    #: Where the clerk sits: the jurisdiction, city and node (None: this node).
    origin_jurisdiction: Mapped[str] = mapped_column(String(6))
    origin_city: Mapped[str] = mapped_column(String(6))
    origin_node: Mapped[str | None] = mapped_column(String(64))
    #: The clerk's account id on their own node, and their name (not an account here).
    clerk_ref: Mapped[str] = mapped_column(String(64))
    clerk_name: Mapped[str] = mapped_column(String(80))
    #: SHA-256 of the session secret held by the clerk's node.
    secret_sha256: Mapped[str] = mapped_column(String(64))
    #: domain.State.
    state: Mapped[str] = mapped_column(String(24), index=True)
    officer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    officer_name: Mapped[str | None] = mapped_column(String(80))
    form: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    locked: Mapped[list[str]] = mapped_column(JSON, default=list)
    identity_method: Mapped[str | None] = mapped_column(String(30))
    applicant_name: Mapped[str | None] = mapped_column(String(80))
    applicant_identifier: Mapped[str | None] = mapped_column(String(24))
    identity_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    case_id: Mapped[str | None] = mapped_column(String(36))
    case_number: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    events: Mapped[list[WindowSessionEvent]] = relationship(
        back_populates="window_session",
        order_by="WindowSessionEvent.seq",
        cascade="all, delete-orphan",
    )


class WindowSessionEvent(Base, EventRow):
    """Append-only history of a session: started, taken, each form change (field and
    value), lock, chat line, document (its SHA-256), identity step, submission, the
    case it became, the end. The payload enters the audit chain as a digest."""

    __tablename__ = "vw_session_event"
    __history_key__ = "session_id"
    __audit_kind__ = "virtualwindow.event"
    __audit_subject__ = ("vw_session", "session_id")
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vw_session.id"), index=True)
    window_session: Mapped[WindowSession] = relationship(back_populates="events")


class WindowDocument(Base):
    """A document the clerk scanned during a session, as the competent node holds it."""

    __tablename__ = "vw_document"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vw_session.id"), index=True)
    attachment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("attachment.id"))
    material_code: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WindowSignal(Base):
    """One WebRTC signalling message (offer, answer, ICE candidate) from one side to the
    other. Transient: it is not history (it says nothing about the application)."""

    __tablename__ = "vw_signal"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vw_session.id"), index=True)
    #: domain.Side of the sender.
    side: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(12))
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WindowTicket(Base):
    """On the clerk's node: a session this node's clerk started, where it lives, and its
    secret (sent with every relayed call; the competent node keeps only its digest)."""

    __tablename__ = "vw_ticket"
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    clerk_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    matter_code: Mapped[str] = mapped_column(String(40))
    competent_jurisdiction: Mapped[str] = mapped_column(String(6))
    secret: Mapped[str] = mapped_column(String(64))
    #: Material code -> id of this node's attachment (claimed by the case at submission).
    uploads: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
